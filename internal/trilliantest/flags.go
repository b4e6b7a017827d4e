package trilliantest

import "flag"

func flagSet() *flag.FlagSet { return flag.NewFlagSet("klog", flag.ContinueOnError) }

//go:build !cgo

package main

import (
	"context"
	"errors"
	"time"

	"github.com/keytrail/keytrail/cmd/internal/cli"
)

func (h demoHardware) pkcs11Key(context.Context, time.Time, func(string, ...any)) (*demoKey, error) {
	return nil, &cli.Error{Code: cli.ExitUsage, Err: errors.New("this keytrail was built without cgo; PKCS #11 needs it")}
}

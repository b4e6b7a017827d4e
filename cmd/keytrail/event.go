package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/keytrail/keytrail/cmd/internal/cli"
	"github.com/keytrail/keytrail/evidence"
)

// eventHelp says what each lifecycle event records and which flags it takes.
var eventHelp = map[string]struct{ short, flags, example string }{
	evidence.EventRequest:          {"a rotation is requested (signed by the requester)", "--key-class", "--key-class hot-signing"},
	evidence.EventCreate:           {"the new key was created", "", ""},
	evidence.EventSmokeTest:        {"the new key was exercised before promotion, with the result", "--passed, --detail, --request-id", "--passed --detail 'signed and verified a test digest' --request-id smoke-1"},
	evidence.EventApprove:          {"an approver approves the rotation (signed by the approver, in a role)", "--role (required)", "--role custody-officer"},
	evidence.EventPromote:          {"the new key is promoted to signing", "", ""},
	evidence.EventDisable:          {"the old key is disabled", "", ""},
	evidence.EventScheduleDeletion: {"a key is scheduled for deletion, kept for the retention", "--retention (required)", "--retention 720h"},
	evidence.EventDestroy:          {"a key is destroyed", "", ""},
	evidence.EventBreakGlass:       {"an emergency action, with its reason and quorum", "--reason, --quorum (required)", "--reason 'signer compromise suspected' --quorum alice@custody.example --quorum bob@custody.example"},
	evidence.EventRollback:         {"the rotation is rolled back, with the reason", "--reason (required)", "--reason 'new key failed in production'"},
	evidence.EventEnable:           {"a key is enabled (usually from a provider's log)", "", ""},
	evidence.EventCancelDeletion:   {"a scheduled deletion is cancelled", "", ""},
	evidence.EventPolicyChange:     {"the key's access policy changed (snapshot it with 'keytrail collect kms-policy')", "", ""},
	evidence.EventGrant:            {"a grant on the key was created", "", ""},
	evidence.EventRotateMaterial:   {"the provider rotated the key material", "", ""},
}

func eventCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "event TYPE",
		Short: "Record one signed lifecycle event of a key",
		Long: `Record one lifecycle event of a key (docs/records.md), signed by whoever acted:
a person signs their own request or approval with their key (the verifier
requires it), a system signs what it did. The record is an in-toto statement
about the key in a DSSE envelope; it is written to a file (-o) or appended to
the ledger (--ledger DIR --log-key FILE).

Types: ` + strings.Join(evidence.LifecycleEvents, ", ") + `.`,
		Example: `  keytrail event request --signer keys/carol@custody.example.pem --actor carol@custody.example --role key-engineer \
    --key-id kms:eu-central-1/custody/hot-1/v1 --public-key old.pub --rotation rot-2026-03-hot-1 --key-class hot-signing \
    --ledger ./keytrail-log --log-key log.key
  keytrail event approve --signer keys/alice.pem --actor alice@custody.example --role custody-officer \
    --key-id kms:eu-central-1/custody/hot-1/v2 --key-digest 4c1f... --rotation rot-2026-03-hot-1 -o approve-alice.json`,
	}
	for _, typ := range evidence.LifecycleEvents {
		c.AddCommand(eventTypeCommand(typ))
	}
	return groupCommand(c)
}

func eventTypeCommand(typ string) *cobra.Command {
	var (
		signerPath, actor, role, rotation, at, keyClass, detail, retention, reason string
		passed                                                                     bool
		quorum, requestIDs                                                         []string
		subj                                                                       subjectFlags
		out                                                                        recordOut
	)
	h := eventHelp[typ]
	long := fmt.Sprintf("Record a %s event: %s.", typ, h.short)
	if h.flags != "" {
		long += "\n\nFlags of this event: " + h.flags + "."
	}
	c := &cobra.Command{
		Use:   typ + " --signer FILE --actor ID --key-id ID (--key-digest HEX | --public-key FILE) (-o FILE | --log-key FILE)",
		Short: "Record a " + typ + " event: " + h.short,
		Long:  long,
		Example: strings.TrimSpace(fmt.Sprintf(`  keytrail event %s --signer keys/actor.pem --actor kms-rotation-service --key-id kms:eu-central-1/custody/hot-1/v2 \
    --public-key new.pub --rotation rot-2026-03-hot-1 %s -o %s.json`, typ, h.example, typ)),
		Args: cli.ExactArgs(0, "none"),
		RunE: func(c *cobra.Command, _ []string) error {
			if err := out.check(); err != nil {
				return err
			}
			if signerPath == "" {
				return cli.Usage("%v", errNoSigner)
			}
			key, err := subj.ref()
			if err != nil {
				return err
			}
			when := time.Now().UTC().Truncate(time.Second)
			if at != "" {
				if when, err = evidence.ParseTime(at); err != nil {
					return cli.Usage("--time: %v", err)
				}
			}
			ev := &evidence.LifecycleEvent{At: evidence.AtTime(when), Event: typ, RotationID: rotation,
				Actor: evidence.Actor{ID: actor, Role: role}, KeyClass: keyClass, Retention: retention, Reason: reason, Quorum: quorum}
			if typ == evidence.EventSmokeTest { // its flags exist only on smoke-test
				ev.SmokeTest = &evidence.SmokeTest{Passed: passed, Detail: detail, RequestIDs: requestIDs}
			}
			signer, err := readSigner(signerPath)
			if err != nil {
				return err
			}
			env, err := signStatement(c.Context(), ev, signer, key)
			if err != nil {
				return err
			}
			return out.emit(c.Context(), c.OutOrStdout(), [][]byte{env}, []string{typ + " " + key.ID})
		},
	}
	f := c.Flags()
	f.StringVar(&signerPath, "signer", "", "PEM private key of the actor, who signs the event (required)")
	f.StringVar(&actor, "actor", "", "who acted: their identity in the trust file (required)")
	f.StringVar(&role, "role", "", "the role the actor acted in")
	f.StringVar(&rotation, "rotation", "", "the rotation ID the event belongs to")
	f.StringVar(&at, "time", "", "when it happened, RFC 3339 UTC (default now)")
	subj.register(c)
	out.register(c, "write the signed event (a DSSE envelope) to this file")
	switch typ {
	case evidence.EventRequest:
		f.StringVar(&keyClass, "key-class", "", "the policy class of the key (required)")
	case evidence.EventSmokeTest:
		f.BoolVar(&passed, "passed", false, "the smoke test passed")
		f.StringVar(&detail, "detail", "", "what the smoke test did")
		f.StringArrayVar(&requestIDs, "request-id", nil, "a signing request the smoke test made; repeatable")
	case evidence.EventScheduleDeletion:
		f.StringVar(&retention, "retention", "", "how long the key is kept before it may be destroyed, e.g. 720h (required)")
	case evidence.EventBreakGlass:
		f.StringVar(&reason, "reason", "", "why (required)")
		f.StringArrayVar(&quorum, "quorum", nil, "who authorised it; repeatable (required)")
	case evidence.EventRollback:
		f.StringVar(&reason, "reason", "", "why (required)")
	}
	return c
}

package main

import (
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/keytrail/keytrail/cmd/internal/cli"
	"github.com/keytrail/keytrail/evidence"
)

// eventHelp says what each lifecycle event records and which flags it takes;
// by is who signs it in the example (default the rotation system).
var eventHelp = map[string]struct{ short, flags, example, by string }{
	evidence.EventRequest:           {"a rotation is requested (signed by the requester)", "--key-class", "--key-class hot-signing", "carol@custody.example --role key-engineer"},
	evidence.EventCreate:            {"the new key was created", "", "", ""},
	evidence.EventSmokeTest:         {"the new key was exercised before promotion, with the result", "--passed, --detail, --request-id", "--passed --detail 'signed and verified a test digest' --request-id smoke-1", ""},
	evidence.EventApprove:           {"an approver approves the rotation's new key (signed by the approver, in a role), for the request's key class", "--role, --key-class (required)", "--key-class hot-signing", "alice@custody.example --role custody-officer"},
	evidence.EventPromote:           {"the new key is promoted to signing", "", "", ""},
	evidence.EventDisable:           {"the old key is disabled", "", "", ""},
	evidence.EventScheduleDeletion:  {"a key is scheduled for deletion, kept for the retention", "--retention (required)", "--retention 720h", ""},
	evidence.EventDestroy:           {"a key is destroyed", "", "", ""},
	evidence.EventBreakGlass:        {"an emergency action declared by one officer, with its reason and the quorum who must confirm it", "--reason, --quorum (required)", "--reason 'signer compromise suspected' --quorum alice@custody.example --quorum bob@custody.example", "alice@custody.example --role custody-officer"},
	evidence.EventBreakGlassConfirm: {"one quorum member confirms a break-glass declaration (signed by that member), naming it by its leaf hash", "--declaration-file or --declaration (one required)", "--declaration-file break-glass.json", "bob@custody.example --role security-officer"},
	evidence.EventRollback:          {"the rotation is rolled back, with the reason", "--reason (required)", "--reason 'new key failed in production'", ""},
	evidence.EventEnable:            {"a key is enabled (usually from a provider's log)", "", "", ""},
	evidence.EventCancelDeletion:    {"a scheduled deletion is cancelled", "", "", ""},
	evidence.EventPolicyChange:      {"the key's access policy changed (snapshot it with 'keytrail collect kms-policy')", "", "", ""},
	evidence.EventGrant:             {"a grant on the key was created", "", "", ""},
	evidence.EventRotateMaterial:    {"the provider rotated the key material", "", "", ""},
}

func eventCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "event TYPE",
		Short: "Record one signed lifecycle event of a key",
		Long: `Record one lifecycle event of a key (docs/records.md), signed by whoever acted:
a person signs their own request, approval, break-glass declaration or
confirmation with their key (the verifier requires it), a system signs what it
did. The verifier accepts an event only from a signer holding a role the
policy's authority allows for its type (docs/policy.md). The record is an
in-toto statement about the key in a DSSE envelope; it is written to a file
(-o) or appended to the ledger (--ledger DIR --log-key FILE).

Types: ` + strings.Join(evidence.LifecycleEvents, ", ") + `.`,
		Example: `  keytrail event request --signer keys/carol@custody.example.pem --actor carol@custody.example --role key-engineer \
    --key-id kms:eu-central-1/custody/hot-1/v1 --public-key old.pub --rotation rot-2026-03-hot-1 --key-class hot-signing \
    --ledger ./keytrail-log --log-key log.key
  keytrail event approve --signer keys/alice.pem --actor alice@custody.example --role custody-officer --key-class hot-signing \
    --key-id kms:eu-central-1/custody/hot-1/v2 --key-digest 4c1f... --rotation rot-2026-03-hot-1 -o approve-alice.json
  keytrail event break-glass-confirm --signer keys/bob.pem --actor bob@custody.example --role security-officer \
    --key-id kms:eu-central-1/custody/hot-1/v2 --key-digest 4c1f... --rotation rot-2026-03-hot-1 --declaration-file break-glass.json -o confirm-bob.json`,
	}
	for _, typ := range evidence.LifecycleEvents {
		c.AddCommand(eventTypeCommand(typ))
	}
	return groupCommand(c)
}

func eventTypeCommand(typ string) *cobra.Command {
	var (
		signerPath, actor, role, rotation, at, keyClass, detail, retention, reason string
		declaration, declarationFile                                               string
		passed                                                                     bool
		quorum, requestIDs                                                         []string
		subj                                                                       subjectFlags
		out                                                                        recordOut
	)
	h := eventHelp[typ]
	by := h.by
	if by == "" {
		by = "kms-rotation-service"
	}
	long := fmt.Sprintf("Record a %s event: %s.", typ, h.short)
	if h.flags != "" {
		long += "\n\nFlags of this event: " + h.flags + "."
	}
	c := &cobra.Command{
		Use:   typ + " --signer FILE --actor ID --key-id ID (--key-digest HEX | --public-key FILE) (-o FILE | --log-key FILE)",
		Short: "Record a " + typ + " event: " + h.short,
		Long:  long,
		Example: strings.TrimSpace(fmt.Sprintf(`  keytrail event %s --signer keys/%s.pem --actor %s --key-id kms:eu-central-1/custody/hot-1/v2 \
    --public-key new.pub --rotation rot-2026-03-hot-1 %s -o %s.json`, typ, exampleID(by), by, h.example, typ)),
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
			if declarationFile != "" {
				if declaration != "" {
					return cli.Usage("give --declaration or --declaration-file, not both")
				}
				if declaration, err = declarationLeaf(declarationFile); err != nil {
					return err
				}
			}
			ev := &evidence.LifecycleEvent{At: evidence.AtTime(when), Event: typ, RotationID: rotation,
				Actor: evidence.Actor{ID: actor, Role: role}, KeyClass: keyClass, Retention: retention, Reason: reason, Quorum: quorum,
				Declaration: declaration}
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
	case evidence.EventApprove:
		f.StringVar(&keyClass, "key-class", "", "the key class of the request approved (required): the approval counts only for a request of that class")
	case evidence.EventSmokeTest:
		f.BoolVar(&passed, "passed", false, "the smoke test passed")
		f.StringVar(&detail, "detail", "", "what the smoke test did")
		f.StringArrayVar(&requestIDs, "request-id", nil, "a signing request the smoke test made; repeatable")
	case evidence.EventScheduleDeletion:
		f.StringVar(&retention, "retention", "", "how long the key is kept before it may be destroyed, e.g. 720h (required)")
	case evidence.EventBreakGlass:
		f.StringVar(&reason, "reason", "", "why (required)")
		f.StringArrayVar(&quorum, "quorum", nil, "who authorised it; repeatable (required)")
	case evidence.EventBreakGlassConfirm:
		f.StringVar(&declarationFile, "declaration-file", "", "the break-glass declaration confirmed: its envelope file, exactly as logged")
		f.StringVar(&declaration, "declaration", "", "the break-glass declaration confirmed: the lowercase hex RFC 6962 leaf hash of its envelope, SHA-256(0x00 || envelope)")
	case evidence.EventRollback:
		f.StringVar(&reason, "reason", "", "why (required)")
	}
	return c
}

// declarationLeaf reads a break-glass declaration's envelope file, exactly
// as logged, and returns its lowercase hex RFC 6962 leaf hash: what a
// break-glass-confirm names.
func declarationLeaf(path string) (string, error) {
	b, err := cli.ReadFile(path, evidence.MaxRecordBytes, "break-glass declaration")
	if err != nil {
		return "", err
	}
	env, err := evidence.ParseEnvelope(b, evidence.MaxRecordBytes)
	if err != nil {
		return "", cli.Input(path, err, "")
	}
	_, pred, err := evidence.ParseStatement(env.Payload)
	if err != nil {
		return "", cli.Input(path, err, "")
	}
	if ev, ok := pred.(*evidence.LifecycleEvent); !ok || ev.Event != evidence.EventBreakGlass {
		return "", cli.Input(path, fmt.Errorf("not a break-glass event (predicate %s)", pred.PredicateType()), "--declaration-file takes the break-glass declaration's envelope")
	}
	return hex.EncodeToString(evidence.LeafHash(b)), nil
}

// exampleID is the identity in an example's --actor value ("alice@custody.example --role r").
func exampleID(by string) string {
	id, _, _ := strings.Cut(by, " ")
	return id
}

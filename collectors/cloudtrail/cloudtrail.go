// Package cloudtrail imports AWS KMS events from AWS CloudTrail log files as
// keytrail records marked as provider-sourced (evidence.ProviderSource):
// lifecycle events for CreateKey, EnableKey, DisableKey, ScheduleKeyDeletion,
// CancelKeyDeletion, PutKeyPolicy, CreateGrant and RotateKey, and signing
// receipts for Sign.
//
// # Input
//
// CloudTrail log files as CloudTrail delivers them to S3
// (https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-log-file-examples.html):
// one JSON object {"Records": [...]}, gzip-compressed (.json.gz) or not. The
// input is untrusted: its size is bounded before and after decompression
// (MaxFileBytes, MaxDecompressedBytes), the number of records is bounded
// (MaxRecords), duplicate member names are errors, and every field used is
// checked. CloudTrail's record format is open (AWS adds members), so unknown
// members are ignored; the members used are closed in meaning.
//
// # What is imported
//
// Only management events from kms.amazonaws.com about a key the caller names
// (Config.Keys, by key ARN) become records; the others are counted and
// skipped. A call that failed (errorCode set) did not happen and is skipped.
// The key is found from the record's resources (type AWS::KMS::Key), or for
// CreateKey from responseElements.keyMetadata.arn: requestParameters.keyId
// may be an alias and is not used. The actor is the caller's
// userIdentity.arn (or the invoking service).
//
// Sign events become receipts with no signature: CloudTrail logs neither the
// message nor the signature. They count for the verifier's timing rules
// (receipts.before-promotion, receipts.after-disable) and are listed, not
// verified, by receipts.signature.
//
// This package does not validate CloudTrail's own log file integrity digests;
// run `aws cloudtrail validate-logs` on the files first.
//
// # Verifying
//
// The verifier accepts a provider-sourced lifecycle event only from a
// collector holding a role of the policy's authority.source, by default
// provider-log: enrol the collector that signs these records with
// "roles": ["provider-log"] in the trust file (docs/trust-file.md). The events
// name no rotation (a provider's log knows none), so they never stand for a
// rotation's own steps.
package cloudtrail

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/keytrail/keytrail/evidence"
)

// Limits on untrusted input.
const (
	MaxFileBytes         = 64 << 20
	MaxDecompressedBytes = 128 << 20
	MaxRecords           = 1 << 20
)

// Errors.
var (
	// ErrMalformed: the file is not a CloudTrail log file, or a used field is wrong.
	ErrMalformed = errors.New("cloudtrail: malformed")
	// ErrTooLarge: the file is over a limit.
	ErrTooLarge = errors.New("cloudtrail: too large")
)

// Provider is the ProviderSource.Provider of every record this package makes.
const Provider = "aws-cloudtrail"

// The KMS event names imported, and the lifecycle event each becomes; Sign
// becomes a receipt.
var lifecycle = map[string]string{
	"CreateKey":           evidence.EventCreate,
	"EnableKey":           evidence.EventEnable,
	"DisableKey":          evidence.EventDisable,
	"ScheduleKeyDeletion": evidence.EventScheduleDeletion,
	"CancelKeyDeletion":   evidence.EventCancelDeletion,
	"PutKeyPolicy":        evidence.EventPolicyChange,
	"CreateGrant":         evidence.EventGrant,
	"RotateKey":           evidence.EventRotateMaterial,
}

// Record is one CloudTrail record, the members this package reads.
type Record struct {
	EventVersion      string         `json:"eventVersion"`
	EventTime         string         `json:"eventTime"`
	EventSource       string         `json:"eventSource"`
	EventName         string         `json:"eventName"`
	AWSRegion         string         `json:"awsRegion"`
	EventID           string         `json:"eventID"`
	RequestID         string         `json:"requestID"`
	ErrorCode         string         `json:"errorCode"`
	UserIdentity      UserIdentity   `json:"userIdentity"`
	RequestParameters jsontext.Value `json:"requestParameters"`
	ResponseElements  jsontext.Value `json:"responseElements"`
	Resources         []Resource     `json:"resources"`
	// Unknown keeps the members this package does not read.
	Unknown jsontext.Value `json:",unknown"`
}

// UserIdentity is who made the call.
type UserIdentity struct {
	Type        string         `json:"type"`
	ARN         string         `json:"arn"`
	PrincipalID string         `json:"principalId"`
	InvokedBy   string         `json:"invokedBy"`
	Unknown     jsontext.Value `json:",unknown"`
}

// Resource is one resource a record names.
type Resource struct {
	ARN     string         `json:"ARN"`
	Type    string         `json:"type"`
	Unknown jsontext.Value `json:",unknown"`
}

type logFile struct {
	Records []jsontext.Value `json:"Records"`
}

// Parse reads one CloudTrail log file (gzip or not) and returns its records.
func Parse(data []byte) ([]Record, error) {
	if len(data) > MaxFileBytes {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(data), MaxFileBytes)
	}
	if len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b {
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("%w: gzip: %w", ErrMalformed, err)
		}
		b, err := io.ReadAll(io.LimitReader(zr, MaxDecompressedBytes+1))
		if err != nil {
			return nil, fmt.Errorf("%w: gzip: %w", ErrMalformed, err)
		}
		if len(b) > MaxDecompressedBytes {
			return nil, fmt.Errorf("%w: over %d bytes decompressed", ErrTooLarge, MaxDecompressedBytes)
		}
		data = b
	}
	opts := []json.Options{jsontext.AllowDuplicateNames(false), jsontext.AllowInvalidUTF8(false), json.MatchCaseInsensitiveNames(false)}
	var f logFile
	if err := json.Unmarshal(data, &f, opts...); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if f.Records == nil {
		return nil, fmt.Errorf("%w: no \"Records\" array", ErrMalformed)
	}
	if len(f.Records) > MaxRecords {
		return nil, fmt.Errorf("%w: %d records, limit %d", ErrTooLarge, len(f.Records), MaxRecords)
	}
	out := make([]Record, len(f.Records))
	for i, raw := range f.Records {
		if err := json.Unmarshal(raw, &out[i], opts...); err != nil {
			return nil, fmt.Errorf("%w: Records[%d]: %w", ErrMalformed, i, err)
		}
	}
	return out, nil
}

// Config configures Import.
type Config struct {
	// Keys maps each key ARN whose events are imported to the key's
	// reference (the statement subject; its ID is usually the ARN). Required.
	Keys map[string]evidence.KeyRef
	// Signer signs the records: the collector's key, which the trust file
	// must allow lifecycle-event and signing-receipt records.
	Signer *evidence.Signer
}

// Imported is one record made from a CloudTrail record.
type Imported struct {
	// Index is the record's position in the file.
	Index int
	// EventName and EventID are CloudTrail's.
	EventName, EventID string
	Key                evidence.KeyRef
	// Predicate is a *evidence.LifecycleEvent or *evidence.SigningReceipt.
	Predicate evidence.Predicate
	// Envelope is the signed statement.
	Envelope []byte
}

// Summary counts what Import skipped.
type Summary struct {
	Imported     int
	OtherSource  int // not kms.amazonaws.com
	OtherEvent   int // a KMS event this package does not import
	OtherKey     int // about a key not in Config.Keys
	FailedCall   int // errorCode set
	ByEventNames map[string]int
}

// Import turns the records of one file into signed records, in file order.
// A record this package imports but cannot read (a bad time, no key, no
// actor) is an error naming its index: nothing of a file is imported unless
// all of it can be.
func Import(ctx context.Context, recs []Record, cfg Config) ([]Imported, Summary, error) {
	sum := Summary{ByEventNames: map[string]int{}}
	if len(cfg.Keys) == 0 || cfg.Signer == nil {
		return nil, sum, errors.New("cloudtrail: Config.Keys and Config.Signer are required")
	}
	var out []Imported
	for i, r := range recs {
		if err := ctx.Err(); err != nil {
			return nil, sum, err
		}
		bad := func(format string, args ...any) error {
			return fmt.Errorf("%w: Records[%d] (%s %s): %s", ErrMalformed, i, r.EventName, r.EventID, fmt.Sprintf(format, args...))
		}
		if r.EventSource != "kms.amazonaws.com" {
			sum.OtherSource++
			continue
		}
		ev, isLifecycle := lifecycle[r.EventName]
		if !isLifecycle && r.EventName != "Sign" {
			sum.OtherEvent++
			continue
		}
		if r.ErrorCode != "" {
			sum.FailedCall++
			continue
		}
		arn, err := keyARN(r)
		if err != nil {
			return nil, sum, bad("%v", err)
		}
		key, ok := cfg.Keys[arn]
		if !ok {
			sum.OtherKey++
			continue
		}
		t, err := time.Parse(time.RFC3339, r.EventTime)
		if err != nil {
			return nil, sum, bad("eventTime %q: %v", r.EventTime, err)
		}
		actor := r.UserIdentity.ARN
		if actor == "" {
			actor = r.UserIdentity.InvokedBy
		}
		if actor == "" {
			return nil, sum, bad("userIdentity has neither arn nor invokedBy")
		}
		if r.EventID == "" {
			return nil, sum, bad("no eventID")
		}
		src := &evidence.ProviderSource{Provider: Provider, EventID: r.EventID, EventName: r.EventName, Region: r.AWSRegion}
		var p evidence.Predicate
		if isLifecycle {
			le := &evidence.LifecycleEvent{At: evidence.AtTime(t), Event: ev, Actor: evidence.Actor{ID: actor}, Source: src}
			if ev == evidence.EventScheduleDeletion {
				days, err := pendingDays(r.RequestParameters)
				if err != nil {
					return nil, sum, bad("%v", err)
				}
				le.Retention = strconv.Itoa(days*24) + "h"
			}
			p = le
		} else {
			if r.RequestID == "" {
				return nil, sum, bad("a Sign event without requestID")
			}
			p = &evidence.SigningReceipt{At: evidence.AtTime(t), Operator: actor, RequestID: r.RequestID, Source: src}
		}
		st, err := evidence.NewStatement(p, key)
		if err != nil {
			return nil, sum, bad("%v", err)
		}
		env, err := evidence.SignStatement(ctx, st, cfg.Signer)
		if err != nil {
			return nil, sum, fmt.Errorf("cloudtrail: sign: %w", err)
		}
		out = append(out, Imported{Index: i, EventName: r.EventName, EventID: r.EventID, Key: key, Predicate: p, Envelope: env})
		sum.Imported++
		sum.ByEventNames[r.EventName]++
	}
	return out, sum, nil
}

// keyARN finds the key a KMS record is about.
func keyARN(r Record) (string, error) {
	if r.EventName == "CreateKey" {
		var resp struct {
			KeyMetadata struct {
				ARN     string         `json:"arn"`
				Unknown jsontext.Value `json:",unknown"`
			} `json:"keyMetadata"`
			Unknown jsontext.Value `json:",unknown"`
		}
		if err := json.Unmarshal(r.ResponseElements, &resp, jsontext.AllowDuplicateNames(false)); err != nil || resp.KeyMetadata.ARN == "" {
			return "", errors.New("CreateKey without responseElements.keyMetadata.arn")
		}
		return resp.KeyMetadata.ARN, nil
	}
	var arns []string
	for _, res := range r.Resources {
		if res.Type == "AWS::KMS::Key" {
			arns = append(arns, res.ARN)
		}
	}
	switch {
	case len(arns) == 0:
		return "", errors.New("no resource of type AWS::KMS::Key")
	case len(arns) > 1:
		return "", fmt.Errorf("%d KMS keys among resources, want one", len(arns))
	case !strings.HasPrefix(arns[0], "arn:"):
		return "", fmt.Errorf("resource ARN %.80q", arns[0])
	}
	return arns[0], nil
}

// pendingDays reads ScheduleKeyDeletion's pendingWindowInDays (7 to 30,
// default 30).
func pendingDays(params jsontext.Value) (int, error) {
	var p struct {
		PendingWindowInDays *int           `json:"pendingWindowInDays"`
		Unknown             jsontext.Value `json:",unknown"`
	}
	if err := json.Unmarshal(params, &p, jsontext.AllowDuplicateNames(false)); err != nil {
		return 0, fmt.Errorf("requestParameters: %v", err)
	}
	if p.PendingWindowInDays == nil {
		return 30, nil
	}
	if d := *p.PendingWindowInDays; d < 7 || d > 30 {
		return 0, fmt.Errorf("pendingWindowInDays %d is not 7 to 30", d)
	}
	return *p.PendingWindowInDays, nil
}

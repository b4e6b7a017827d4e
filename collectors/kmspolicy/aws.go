package kmspolicy

import (
	"cmp"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/keytrail/keytrail/internal/kmsperm"
)

// AWSExport is what the operator exported for one AWS KMS key, each file the
// output of an AWS CLI command run with --output json:
//
//	aws kms describe-key   --key-id KEY
//	aws kms get-key-policy --key-id KEY --policy-name default
//	aws kms list-grants    --key-id KEY
//
// KeyPolicy may also be the bare policy document (get-key-policy with
// --query Policy --output text). list-grants must be the complete listing (the
// CLI's default automatic pagination); a truncated page is ErrIncomplete.
type AWSExport struct {
	DescribeKey File
	KeyPolicy   File
	Grants      File
}

// ParseAWS normalises an AWS key's export into a Policy. See the package
// documentation for the rules.
func ParseAWS(x AWSExport) (*Policy, error) {
	res, arn, err := parseDescribeKey(x.DescribeKey)
	if err != nil {
		return nil, err
	}
	p := &Policy{Provider: ProviderAWS, Resource: res}
	var b builder
	if p.CanonicalSHA256, err = parseKeyPolicy(&b, x.KeyPolicy, arn); err != nil {
		return nil, err
	}
	if p.GrantsSHA256, err = parseGrants(&b, x.Grants, arn); err != nil {
		return nil, err
	}
	b.finish(p)
	return p, nil
}

type awsDescribeKey struct {
	KeyMetadata *struct {
		AWSAccountID             string `json:"AWSAccountId"`
		KeyID                    string `json:"KeyId"`
		Arn                      string `json:"Arn"`
		KeyState                 string `json:"KeyState"`
		KeyUsage                 string `json:"KeyUsage"`
		KeySpec                  string `json:"KeySpec"`
		KeyManager               string `json:"KeyManager"`
		Origin                   string `json:"Origin"`
		MultiRegion              bool   `json:"MultiRegion"`
		MultiRegionConfiguration *struct {
			PrimaryKey  *awsRegionKey  `json:"PrimaryKey"`
			ReplicaKeys []awsRegionKey `json:"ReplicaKeys"`
		} `json:"MultiRegionConfiguration"`
	} `json:"KeyMetadata"`
}

type awsRegionKey struct {
	Arn    string `json:"Arn"`
	Region string `json:"Region"`
}

// parseDescribeKey reads describe-key output. It is decoded openly (AWS adds
// metadata often, and none of it grants access), but the fields used are
// checked against each other.
func parseDescribeKey(f File) (Resource, KeyARN, error) {
	if err := scan(f.Name, f.Data, MaxFileBytes); err != nil {
		return Resource{}, KeyARN{}, err
	}
	var d awsDescribeKey
	if err := decodeOpen(f.Name, f.Data, &d); err != nil {
		return Resource{}, KeyARN{}, err
	}
	m := d.KeyMetadata
	if m == nil {
		return Resource{}, KeyARN{}, inputErr(f.Name, "/KeyMetadata", ErrMalformed, "missing")
	}
	arn, err := ParseKeyARN(m.Arn)
	if err != nil {
		return Resource{}, KeyARN{}, &InputError{File: f.Name, Field: "/KeyMetadata/Arn", Err: err}
	}
	if m.AWSAccountID != arn.Account {
		return Resource{}, KeyARN{}, inputErr(f.Name, "/KeyMetadata/AWSAccountId", ErrMismatch, "%q, but the ARN's account is %q", m.AWSAccountID, arn.Account)
	}
	if m.KeyID != arn.KeyID {
		return Resource{}, KeyARN{}, inputErr(f.Name, "/KeyMetadata/KeyId", ErrMismatch, "%q, but the ARN's key id is %q", m.KeyID, arn.KeyID)
	}
	if m.MultiRegion != strings.HasPrefix(arn.KeyID, "mrk-") {
		return Resource{}, KeyARN{}, inputErr(f.Name, "/KeyMetadata/MultiRegion", ErrMismatch, "%v for key id %q", m.MultiRegion, arn.KeyID)
	}
	res := Resource{
		Name: m.Arn, Partition: arn.Partition, Region: arn.Region, Account: arn.Account, KeyID: arn.KeyID,
		KeySpec: m.KeySpec, KeyUsage: m.KeyUsage, KeyState: m.KeyState, KeyManager: m.KeyManager, Origin: m.Origin,
	}
	if c := m.MultiRegionConfiguration; c != nil {
		if !m.MultiRegion {
			return Resource{}, KeyARN{}, inputErr(f.Name, "/KeyMetadata/MultiRegionConfiguration", ErrMismatch, "present on a single-region key")
		}
		keys := c.ReplicaKeys
		if len(keys) > MaxListItems {
			return Resource{}, KeyARN{}, inputErr(f.Name, "/KeyMetadata/MultiRegionConfiguration/ReplicaKeys", ErrTooLarge, "%d replicas", len(keys))
		}
		if c.PrimaryKey != nil {
			keys = append([]awsRegionKey{*c.PrimaryKey}, keys...)
		}
		for i, k := range keys {
			field := "/KeyMetadata/MultiRegionConfiguration/ReplicaKeys/" + strconv.Itoa(i)
			if c.PrimaryKey != nil {
				field = "/KeyMetadata/MultiRegionConfiguration/ReplicaKeys/" + strconv.Itoa(i-1)
				if i == 0 {
					field = "/KeyMetadata/MultiRegionConfiguration/PrimaryKey"
				}
			}
			r, err := ParseKeyARN(k.Arn)
			if err != nil {
				return Resource{}, KeyARN{}, &InputError{File: f.Name, Field: field + "/Arn", Err: err}
			}
			if r.Partition != arn.Partition || r.Account != arn.Account || r.KeyID != arn.KeyID || r.Region != k.Region {
				return Resource{}, KeyARN{}, inputErr(f.Name, field, ErrMismatch, "%s (region %q) is not a copy of %s", k.Arn, k.Region, m.Arn)
			}
			if r.Region != arn.Region {
				res.ReplicaRegions = append(res.ReplicaRegions, r.Region)
			}
		}
		slices.Sort(res.ReplicaRegions)
		res.ReplicaRegions = slices.Compact(res.ReplicaRegions)
	}
	return res, arn, nil
}

// IAM policy grammar (IAM User Guide, "IAM JSON policy element reference").
type iamPolicy struct {
	Version   string         `json:"Version"`
	ID        string         `json:"Id"`
	Statement jsontext.Value `json:"Statement"`
}

type iamStatement struct {
	Sid          string         `json:"Sid"`
	Effect       string         `json:"Effect"`
	Principal    jsontext.Value `json:"Principal"`
	NotPrincipal jsontext.Value `json:"NotPrincipal"`
	Action       jsontext.Value `json:"Action"`
	NotAction    jsontext.Value `json:"NotAction"`
	Resource     jsontext.Value `json:"Resource"`
	NotResource  jsontext.Value `json:"NotResource"`
	Condition    jsontext.Value `json:"Condition"`
}

type awsGetKeyPolicy struct {
	Policy     string `json:"Policy"`
	PolicyName string `json:"PolicyName"`
}

// parseKeyPolicy reads get-key-policy output (or the bare document), adds its
// entries to b and returns the hex SHA-256 of the document's RFC 8785 form.
func parseKeyPolicy(b *builder, f File, arn KeyARN) (string, error) {
	if err := scan(f.Name, f.Data, MaxFileBytes); err != nil {
		return "", err
	}
	var top map[string]jsontext.Value
	if err := decodeStrict(f.Name, f.Data, &top, MaxFileBytes); err != nil {
		return "", err
	}
	docFile, doc := f.Name, f.Data
	if _, wrapped := top["Policy"]; wrapped {
		var w awsGetKeyPolicy
		if err := decodeStrict(f.Name, f.Data, &w, MaxFileBytes); err != nil {
			return "", err
		}
		if w.PolicyName != "" && w.PolicyName != "default" {
			return "", inputErr(f.Name, "/PolicyName", ErrUnsupported, "%q (KMS keys have one policy, \"default\")", w.PolicyName)
		}
		docFile, doc = f.Name+" (Policy)", []byte(w.Policy)
		if err := scan(docFile, doc, MaxFileBytes); err != nil {
			return "", err
		}
	}
	return parsePolicyDocument(b, docFile, doc, arn)
}

func parsePolicyDocument(b *builder, file string, doc []byte, arn KeyARN) (string, error) {
	var p iamPolicy
	if err := decodeStrict(file, doc, &p, MaxFileBytes); err != nil {
		return "", err
	}
	switch p.Version {
	case "", "2008-10-17", "2012-10-17":
	default:
		return "", inputErr(file, "/Version", ErrUnsupported, "policy language version %q", p.Version)
	}
	canon, err := canonical(file, "", doc)
	if err != nil {
		return "", err
	}
	var stmts []jsontext.Value
	var fields []string
	switch p.Statement.Kind() {
	case '{':
		stmts, fields = []jsontext.Value{p.Statement}, []string{"/Statement"}
	case '[':
		if err := decodeStrict(file, p.Statement, &stmts, MaxFileBytes); err != nil {
			return "", prefixErr(err, "/Statement")
		}
		if len(stmts) > MaxStatements {
			return "", inputErr(file, "/Statement", ErrTooLarge, "%d statements, limit %d", len(stmts), MaxStatements)
		}
		for i := range stmts {
			fields = append(fields, "/Statement/"+strconv.Itoa(i))
		}
	default:
		return "", inputErr(file, "/Statement", ErrMalformed, "want an object or a list of objects, have JSON %s", kindName(p.Statement))
	}
	sids := map[string]bool{}
	for i, raw := range stmts {
		var s iamStatement
		if err := decodeStrict(file, raw, &s, MaxFileBytes); err != nil {
			return "", prefixErr(err, fields[i])
		}
		if s.Sid != "" {
			if sids[s.Sid] {
				return "", inputErr(file, fields[i]+"/Sid", ErrMalformed, "Sid %q repeats an earlier statement's", s.Sid)
			}
			sids[s.Sid] = true
		}
		if err := statement(b, file, fields[i], &s, arn); err != nil {
			return "", err
		}
	}
	return sha256Hex(canon), nil
}

// prefixErr puts a JSON Pointer prefix before an *InputError's field, for
// errors found while decoding a member on its own.
func prefixErr(err error, prefix string) error {
	if ie, ok := err.(*InputError); ok {
		ie.Field = prefix + ie.Field
	}
	return err
}

func present(v jsontext.Value) bool { return len(v) != 0 }

func statement(b *builder, file, field string, s *iamStatement, arn KeyARN) error {
	source := "key policy " + field
	if s.Sid != "" {
		source += " " + strconv.Quote(s.Sid)
	}
	var effect string
	switch s.Effect {
	case "Allow":
		effect = EffectAllow
	case "Deny":
		effect = EffectDeny
	default:
		return inputErr(file, field+"/Effect", ErrMalformed, "%q, want \"Allow\" or \"Deny\"", s.Effect)
	}

	// Which key? A key policy's Resource is "*" (this key); anything else is
	// matched against the key's ARN, and a statement that does not cover it is
	// reported as skipped.
	var applies bool
	switch {
	case present(s.Resource) == present(s.NotResource):
		return inputErr(file, field, ErrMalformed, "want exactly one of Resource and NotResource")
	case present(s.Resource):
		rs, err := stringList(file, field+"/Resource", s.Resource)
		if err != nil {
			return err
		}
		applies = slices.ContainsFunc(rs, func(r string) bool { return matchARN(r, arn.String()) })
	default:
		rs, err := stringList(file, field+"/NotResource", s.NotResource)
		if err != nil {
			return err
		}
		applies = !slices.ContainsFunc(rs, func(r string) bool { return matchARN(r, arn.String()) })
	}

	// Who?
	var principals []string
	switch {
	case present(s.Principal) == present(s.NotPrincipal):
		return inputErr(file, field, ErrMalformed, "want exactly one of Principal and NotPrincipal")
	case present(s.Principal):
		ps, err := iamPrincipals(file, field+"/Principal", s.Principal, arn.Partition)
		if err != nil {
			return err
		}
		principals = ps
	default:
		ps, err := iamPrincipals(file, field+"/NotPrincipal", s.NotPrincipal, arn.Partition)
		if err != nil {
			return err
		}
		if slices.Contains(ps, "*") {
			return inputErr(file, field+"/NotPrincipal", ErrUnsupported, `"*" (a statement for nobody)`)
		}
		principals = []string{Principal{Name: "*", Except: ps}.String()}
	}

	// What?
	var perms []Permission
	switch {
	case present(s.Action) == present(s.NotAction):
		return inputErr(file, field, ErrMalformed, "want exactly one of Action and NotAction")
	case present(s.Action):
		as, err := iamActions(file, field+"/Action", s.Action)
		if err != nil {
			return err
		}
		for _, a := range as {
			perms = append(perms, Permission{Pattern: a})
		}
	default:
		as, err := iamActions(file, field+"/NotAction", s.NotAction)
		if err != nil {
			return err
		}
		perms = []Permission{{Pattern: "*", Except: as}}
	}

	// Under which condition?
	var cond string
	if present(s.Condition) {
		c, err := iamCondition(b, file, field+"/Condition", s.Condition)
		if err != nil {
			return err
		}
		cond = c
	}

	if !applies {
		b.skipped = append(b.skipped, Skipped{Source: source, Reason: "its Resource/NotResource does not cover " + arn.String()})
		return nil
	}
	if err := b.reserve(file, field, len(principals)*len(perms)); err != nil {
		return err
	}
	for _, p := range principals {
		for _, perm := range perms {
			perm.Condition = cond
			b.add(effect, p, perm, source)
		}
	}
	return nil
}

// matchARN matches an ARN against an IAM resource pattern: case-sensitive,
// "*" any run, "?" one character.
func matchARN(pattern, arn string) bool { return kmsperm.Match(pattern, arn, false) }

// principalTypes are the keys of an IAM Principal object, in the order names
// of each type are listed.
var principalTypes = []string{"AWS", "CanonicalUser", "Federated", "Service"}

// iamPrincipals normalises a Principal or NotPrincipal value to sorted names:
// "*" for "*" and {"AWS": "*"}; "AWS:" and an ARN, with a bare 12-digit account
// turned into its root ARN (arn:PARTITION:iam::ACCOUNT:root, the same
// principal); "Service:", "Federated:", "CanonicalUser:" and the value.
func iamPrincipals(file, field string, v jsontext.Value, partition string) ([]string, error) {
	if v.Kind() == '"' {
		ss, err := stringList(file, field, v)
		if err != nil {
			return nil, err
		}
		if ss[0] != "*" {
			return nil, inputErr(file, field, ErrMalformed, "%q: a principal string must be \"*\"; name others as {\"AWS\": ...}", ss[0])
		}
		return ss, nil
	}
	if v.Kind() != '{' {
		return nil, inputErr(file, field, ErrMalformed, "want \"*\" or an object, have JSON %s", kindName(v))
	}
	var m map[string]jsontext.Value
	if err := decodeStrict(file, v, &m, MaxFileBytes); err != nil {
		return nil, prefixErr(err, field)
	}
	if len(m) == 0 {
		return nil, inputErr(file, field, ErrMalformed, "empty principal object")
	}
	for k := range m {
		if !slices.Contains(principalTypes, k) {
			return nil, inputErr(file, field+"/"+k, ErrUnsupported, "principal type %q (known: %v)", k, principalTypes)
		}
	}
	var out []string
	for _, typ := range principalTypes {
		raw, ok := m[typ]
		if !ok {
			continue
		}
		names, err := stringList(file, field+"/"+typ, raw)
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			switch {
			case typ == "AWS" && n == "*":
				out = append(out, "*")
			case typ == "AWS" && accountPattern.MatchString(n):
				out = append(out, "AWS:arn:"+partition+":iam::"+n+":root")
			default:
				out = append(out, typ+":"+n)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

var actionPattern = regexp.MustCompile(`^(\*|[A-Za-z0-9*?-]+:[A-Za-z0-9*?]+)$`)

// iamActions normalises an Action or NotAction value to sorted patterns: the
// service prefix in lower case, a KMS action without wildcards in its API
// spelling (IAM matches actions case-insensitively, so "kms:sign" is
// kms:Sign), wildcards kept as written.
func iamActions(file, field string, v jsontext.Value) ([]string, error) {
	as, err := stringList(file, field, v)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(as))
	for i, a := range as {
		if !actionPattern.MatchString(a) {
			f := field
			if v.Kind() == '[' {
				f += "/" + strconv.Itoa(i)
			}
			return nil, inputErr(file, f, ErrMalformed, "%q is not an action (service:Action, wildcards * and ?)", a)
		}
		out = append(out, normaliseAction(a))
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

func normaliseAction(a string) string {
	service, name, ok := strings.Cut(a, ":")
	if !ok {
		return a
	}
	service = strings.ToLower(service)
	if service == "kms" {
		if k, ok := kmsActionByFold[strings.ToLower(name)]; ok {
			name = k
		}
	}
	return service + ":" + name
}

// iamCondition checks a Condition block's shape (operator -> key -> values)
// and records its canonical form. An empty block is no condition.
func iamCondition(b *builder, file, field string, v jsontext.Value) (string, error) {
	if v.Kind() != '{' {
		return "", inputErr(file, field, ErrMalformed, "want an object, have JSON %s", kindName(v))
	}
	var ops map[string]map[string]jsontext.Value
	if err := decodeStrict(file, v, &ops, MaxFileBytes); err != nil {
		return "", prefixErr(err, field)
	}
	if len(ops) == 0 {
		return "", nil
	}
	for op, keys := range ops {
		if len(keys) == 0 {
			return "", inputErr(file, field+"/"+op, ErrMalformed, "condition operator with no keys")
		}
		for k, val := range keys {
			switch val.Kind() {
			case '"', '0', 't', 'f':
			case '[':
				var items []jsontext.Value
				if err := decodeStrict(file, val, &items, MaxFileBytes); err != nil {
					return "", prefixErr(err, field+"/"+op+"/"+k)
				}
				for _, it := range items {
					if kd := it.Kind(); kd != '"' && kd != '0' && kd != 't' && kd != 'f' {
						return "", inputErr(file, field+"/"+op+"/"+k, ErrMalformed, "condition values are strings, numbers or booleans, have JSON %s", kd)
					}
				}
			default:
				return "", inputErr(file, field+"/"+op+"/"+k, ErrMalformed, "condition values are strings, numbers or booleans, have JSON %s", kindName(val))
			}
		}
	}
	canon, err := canonical(file, field, v)
	if err != nil {
		return "", err
	}
	return b.condition(canon), nil
}

// list-grants output. Grant entries are closed: an unknown member could be a
// new kind of constraint.
type awsListGrants struct {
	Grants     []jsontext.Value `json:"Grants"`
	Truncated  bool             `json:"Truncated"`
	NextMarker string           `json:"NextMarker"`
	NextToken  string           `json:"NextToken"`
}

type awsGrant struct {
	KeyID             string         `json:"KeyId"`
	GrantID           string         `json:"GrantId"`
	Name              string         `json:"Name"`
	CreationDate      jsontext.Value `json:"CreationDate"`
	GranteePrincipal  string         `json:"GranteePrincipal"`
	RetiringPrincipal string         `json:"RetiringPrincipal"`
	IssuingAccount    string         `json:"IssuingAccount"`
	Operations        []string       `json:"Operations"`
	Constraints       jsontext.Value `json:"Constraints"`
}

var grantOperationPattern = regexp.MustCompile(`^[A-Za-z]{1,64}$`)

// parseGrants reads list-grants output, adds each grant's entries to b and
// returns the hex SHA-256 of the RFC 8785 form of {"Grants": [...]} with the
// grants sorted by GrantId.
func parseGrants(b *builder, f File, arn KeyARN) (string, error) {
	if err := scan(f.Name, f.Data, MaxGrantsFileBytes); err != nil {
		return "", err
	}
	var l awsListGrants
	if err := decodeStrict(f.Name, f.Data, &l, MaxGrantsFileBytes); err != nil {
		return "", err
	}
	switch {
	case l.Grants == nil:
		return "", inputErr(f.Name, "/Grants", ErrMalformed, "missing")
	case l.Truncated:
		return "", inputErr(f.Name, "/Truncated", ErrIncomplete, "the listing is truncated; export every page")
	case l.NextMarker != "":
		return "", inputErr(f.Name, "/NextMarker", ErrIncomplete, "more grants follow; export every page")
	case l.NextToken != "":
		return "", inputErr(f.Name, "/NextToken", ErrIncomplete, "more grants follow; export without --max-items")
	case len(l.Grants) > MaxGrants:
		return "", inputErr(f.Name, "/Grants", ErrTooLarge, "%d grants, limit %d", len(l.Grants), MaxGrants)
	}
	type sorted struct {
		id  string
		raw jsontext.Value
	}
	all := make([]sorted, 0, len(l.Grants))
	seen := map[string]bool{}
	for i, raw := range l.Grants {
		field := "/Grants/" + strconv.Itoa(i)
		var g awsGrant
		if err := decodeStrict(f.Name, raw, &g, MaxGrantsFileBytes); err != nil {
			return "", prefixErr(err, field)
		}
		if g.KeyID != arn.String() {
			return "", inputErr(f.Name, field+"/KeyId", ErrMismatch, "grant for %q, not for %s", g.KeyID, arn)
		}
		if err := checkName(f.Name, field+"/GrantId", g.GrantID); err != nil {
			return "", err
		}
		if seen[g.GrantID] {
			return "", inputErr(f.Name, field+"/GrantId", ErrMalformed, "grant %q listed twice", g.GrantID)
		}
		seen[g.GrantID] = true
		source := "grant " + g.GrantID
		if g.Name != "" {
			source += " " + strconv.Quote(g.Name)
		}
		grantee, err := grantPrincipal(f.Name, field+"/GranteePrincipal", g.GranteePrincipal, arn.Partition)
		if err != nil {
			return "", err
		}
		if len(g.Operations) == 0 {
			return "", inputErr(f.Name, field+"/Operations", ErrMalformed, "no operations")
		}
		if len(g.Operations) > MaxListItems {
			return "", inputErr(f.Name, field+"/Operations", ErrTooLarge, "%d operations", len(g.Operations))
		}
		var cond string
		if present(g.Constraints) && string(g.Constraints) != "null" {
			if g.Constraints.Kind() != '{' {
				return "", inputErr(f.Name, field+"/Constraints", ErrMalformed, "want an object, have JSON %s", kindName(g.Constraints))
			}
			canon, err := canonical(f.Name, field+"/Constraints", g.Constraints)
			if err != nil {
				return "", err
			}
			if string(canon) != "{}" {
				cond = b.condition(canon)
			}
		}
		if err := b.reserve(f.Name, field, len(g.Operations)+1); err != nil {
			return "", err
		}
		for j, op := range g.Operations {
			if !grantOperationPattern.MatchString(op) {
				return "", inputErr(f.Name, field+"/Operations/"+strconv.Itoa(j), ErrMalformed, "%q is not a grant operation", op)
			}
			b.add(EffectAllow, grantee, Permission{Pattern: normaliseAction("kms:" + op), Condition: cond}, source)
		}
		if g.RetiringPrincipal != "" {
			retiring, err := grantPrincipal(f.Name, field+"/RetiringPrincipal", g.RetiringPrincipal, arn.Partition)
			if err != nil {
				return "", err
			}
			scope, err := canonical(f.Name, field, jsontext.Value(`{"GrantId":`+strconv.Quote(g.GrantID)+`}`))
			if err != nil {
				return "", err
			}
			b.add(EffectAllow, retiring, Permission{Pattern: "kms:RetireGrant", Condition: b.condition(scope)}, source+" (retiring principal)")
		}
		all = append(all, sorted{g.GrantID, raw})
	}
	slices.SortFunc(all, func(x, y sorted) int { return cmp.Compare(x.id, y.id) })
	doc := []byte(`{"Grants":[`)
	for i, g := range all {
		if i > 0 {
			doc = append(doc, ',')
		}
		doc = append(doc, g.raw...)
	}
	doc = append(doc, "]}"...)
	canon, err := canonical(f.Name, "/Grants", doc)
	if err != nil {
		return "", err
	}
	return sha256Hex(canon), nil
}

// grantPrincipal names a grant's grantee or retiring principal the way policy
// principals are named: "AWS:" and an ARN (a 12-digit account becomes its root
// ARN), or "Service:" and a service principal.
func grantPrincipal(file, field, v, partition string) (string, error) {
	if err := checkName(file, field, v); err != nil {
		return "", err
	}
	switch {
	case strings.HasPrefix(v, "arn:"):
		return "AWS:" + v, nil
	case accountPattern.MatchString(v):
		return "AWS:arn:" + partition + ":iam::" + v + ":root", nil
	case strings.Contains(v, ".") && !strings.Contains(v, ":"):
		return "Service:" + v, nil
	}
	return "", inputErr(file, field, ErrUnsupported, "%q is neither an ARN, an account nor a service principal", v)
}

// kmsActions is every AWS KMS API action (AWS KMS API Reference, "Actions";
// Service Authorization Reference, "Actions defined by AWS Key Management
// Service"). It is used only to spell actions the way AWS does; actions not
// listed are kept as written.
var kmsActions = []string{
	"CancelKeyDeletion", "ConnectCustomKeyStore", "CreateAlias", "CreateCustomKeyStore", "CreateGrant",
	"CreateKey", "Decrypt", "DeleteAlias", "DeleteCustomKeyStore", "DeleteImportedKeyMaterial",
	"DeriveSharedSecret", "DescribeCustomKeyStores", "DescribeKey", "DisableKey", "DisableKeyRotation",
	"DisconnectCustomKeyStore", "EnableKey", "EnableKeyRotation", "Encrypt", "GenerateDataKey",
	"GenerateDataKeyPair", "GenerateDataKeyPairWithoutPlaintext", "GenerateDataKeyWithoutPlaintext",
	"GenerateMac", "GenerateRandom", "GetKeyPolicy", "GetKeyRotationStatus", "GetParametersForImport",
	"GetPublicKey", "ImportKeyMaterial", "ListAliases", "ListGrants", "ListKeyPolicies", "ListKeyRotations",
	"ListKeys", "ListResourceTags", "ListRetirableGrants", "PutKeyPolicy", "ReEncryptFrom", "ReEncryptTo",
	"ReplicateKey", "RetireGrant", "RevokeGrant", "RotateKeyOnDemand", "ScheduleKeyDeletion", "Sign",
	"SynchronizeMultiRegionKey", "TagResource", "UntagResource", "UpdateAlias", "UpdateCustomKeyStore",
	"UpdateKeyDescription", "UpdatePrimaryRegion", "Verify", "VerifyMac",
}

var kmsActionByFold = func() map[string]string {
	m := make(map[string]string, len(kmsActions))
	for _, a := range kmsActions {
		m[strings.ToLower(a)] = a
	}
	return m
}()

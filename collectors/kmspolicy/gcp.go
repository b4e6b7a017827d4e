package kmspolicy

import (
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/go-json-experiment/json/jsontext"
)

// GCPExport is what the operator exported for one Cloud KMS key, each file the
// output of a gcloud command run with --format json:
//
//	gcloud kms keys describe       KEY --keyring RING --location LOC --format json
//	gcloud kms keys get-iam-policy KEY --keyring RING --location LOC --format json
//
// Only the key's own IAM policy is read: roles granted on the key ring, the
// project, a folder or the organization are inherited by the key and are not
// in this export (see the package documentation).
type GCPExport struct {
	Describe  File
	IAMPolicy File
}

// ParseGCP normalises a Cloud KMS key's export into a Policy. See the package
// documentation for the rules.
func ParseGCP(x GCPExport) (*Policy, error) {
	res, err := parseGCPDescribe(x.Describe)
	if err != nil {
		return nil, err
	}
	p := &Policy{Provider: ProviderGCP, Resource: res}
	var b builder
	if p.CanonicalSHA256, err = parseIAMPolicy(&b, x.IAMPolicy); err != nil {
		return nil, err
	}
	b.finish(p)
	return p, nil
}

type gcpDescribe struct {
	Name    string `json:"name"`
	Purpose string `json:"purpose"`
	Primary *struct {
		Name            string `json:"name"`
		Algorithm       string `json:"algorithm"`
		ProtectionLevel string `json:"protectionLevel"`
	} `json:"primary"`
	VersionTemplate *struct {
		Algorithm       string `json:"algorithm"`
		ProtectionLevel string `json:"protectionLevel"`
	} `json:"versionTemplate"`
}

var (
	cryptoKeyNamePattern = regexp.MustCompile(`^projects/([a-z0-9][a-z0-9.:-]{0,98}[a-z0-9])/locations/([a-z][a-z0-9-]{0,62})/keyRings/([A-Za-z0-9_-]{1,63})/cryptoKeys/([A-Za-z0-9_-]{1,63})$`)
	versionSuffixPattern = regexp.MustCompile(`^/cryptoKeyVersions/[1-9][0-9]{0,18}$`)
)

// ParseCryptoKeyName splits a CryptoKey resource name,
// projects/P/locations/L/keyRings/R/cryptoKeys/K, into its parts.
func ParseCryptoKeyName(name string) (project, location, keyRing, cryptoKey string, err error) {
	m := cryptoKeyNamePattern.FindStringSubmatch(name)
	if m == nil {
		return "", "", "", "", errorf(ErrMalformed, "%q is not a CryptoKey name (projects/P/locations/L/keyRings/R/cryptoKeys/K)", name)
	}
	return m[1], m[2], m[3], m[4], nil
}

// parseGCPDescribe reads `gcloud kms keys describe` output. It is decoded
// openly (Google adds fields often, and none grants access).
func parseGCPDescribe(f File) (Resource, error) {
	if err := scan(f.Name, f.Data, MaxFileBytes); err != nil {
		return Resource{}, err
	}
	var d gcpDescribe
	if err := decodeOpen(f.Name, f.Data, &d); err != nil {
		return Resource{}, err
	}
	project, location, ring, key, err := ParseCryptoKeyName(d.Name)
	if err != nil {
		return Resource{}, &InputError{File: f.Name, Field: "/name", Err: err}
	}
	res := Resource{Name: d.Name, Project: project, Location: location, KeyRing: ring, CryptoKey: key, Purpose: d.Purpose}
	if t := d.VersionTemplate; t != nil {
		res.Algorithm, res.ProtectionLevel = t.Algorithm, t.ProtectionLevel
	}
	if p := d.Primary; p != nil {
		suffix, ok := strings.CutPrefix(p.Name, d.Name)
		if !ok || !versionSuffixPattern.MatchString(suffix) {
			return Resource{}, inputErr(f.Name, "/primary/name", ErrMismatch, "%q is not a version of %s", p.Name, d.Name)
		}
		res.PrimaryVersion = p.Name
		if p.Algorithm != "" {
			res.Algorithm = p.Algorithm
		}
		if p.ProtectionLevel != "" {
			res.ProtectionLevel = p.ProtectionLevel
		}
	}
	return res, nil
}

// The IAM policy as get-iam-policy prints it (IAM API, "Policy"). Closed: an
// unknown member could change who holds a role.
type gcpPolicy struct {
	Bindings     []jsontext.Value `json:"bindings"`
	Etag         string           `json:"etag"`
	Version      int              `json:"version"`
	AuditConfigs jsontext.Value   `json:"auditConfigs"`
}

type gcpBinding struct {
	Role      string         `json:"role"`
	Members   []string       `json:"members"`
	Condition jsontext.Value `json:"condition"`
}

type gcpExpr struct {
	Expression  string `json:"expression"`
	Title       string `json:"title"`
	Description string `json:"description"`
	Location    string `json:"location"`
}

var (
	predefinedRolePattern = regexp.MustCompile(`^roles/[A-Za-z0-9_.]{1,128}$`)
	customRolePattern     = regexp.MustCompile(`^(projects|organizations)/[A-Za-z0-9.:_-]{1,100}/roles/[A-Za-z0-9_.]{1,64}$`)
)

// memberPrefixes are the member forms of an IAM binding (IAM API, "Binding").
var memberPrefixes = []string{
	"user:", "serviceAccount:", "group:", "domain:", "principal:", "principalSet:", "deleted:",
	"projectOwner:", "projectEditor:", "projectViewer:",
}

// parseIAMPolicy reads get-iam-policy output, adds its entries to b and
// returns the hex SHA-256 of its RFC 8785 form.
func parseIAMPolicy(b *builder, f File) (string, error) {
	if err := scan(f.Name, f.Data, MaxFileBytes); err != nil {
		return "", err
	}
	var p gcpPolicy
	if err := decodeStrict(f.Name, f.Data, &p, MaxFileBytes); err != nil {
		return "", err
	}
	switch p.Version {
	case 0, 1, 3:
	default:
		return "", inputErr(f.Name, "/version", ErrUnsupported, "IAM policy version %d", p.Version)
	}
	if len(p.Bindings) > MaxBindings {
		return "", inputErr(f.Name, "/bindings", ErrTooLarge, "%d bindings, limit %d", len(p.Bindings), MaxBindings)
	}
	canon, err := canonical(f.Name, "", f.Data)
	if err != nil {
		return "", err
	}
	members := 0
	for i, raw := range p.Bindings {
		field := "/bindings/" + strconv.Itoa(i)
		var bd gcpBinding
		if err := decodeStrict(f.Name, raw, &bd, MaxFileBytes); err != nil {
			return "", prefixErr(err, field)
		}
		perms, err := rolePermissions(f.Name, field+"/role", bd.Role)
		if err != nil {
			return "", err
		}
		if len(bd.Members) == 0 {
			return "", inputErr(f.Name, field+"/members", ErrMalformed, "no members")
		}
		if members += len(bd.Members); members > MaxListItems {
			return "", inputErr(f.Name, field+"/members", ErrTooLarge, "over %d members in all", MaxListItems)
		}
		var cond string
		if present(bd.Condition) && string(bd.Condition) != "null" {
			var e gcpExpr
			if err := decodeStrict(f.Name, bd.Condition, &e, MaxFileBytes); err != nil {
				return "", prefixErr(err, field+"/condition")
			}
			if e.Expression == "" {
				return "", inputErr(f.Name, field+"/condition/expression", ErrMalformed, "missing")
			}
			if p.Version != 3 {
				return "", inputErr(f.Name, "/version", ErrMismatch, "a conditional binding needs policy version 3, have %d", p.Version)
			}
			c, err := canonical(f.Name, field+"/condition", bd.Condition)
			if err != nil {
				return "", err
			}
			cond = b.condition(c)
		}
		if err := b.reserve(f.Name, field, len(bd.Members)*len(perms)); err != nil {
			return "", err
		}
		source := "binding " + field + " " + bd.Role
		for j, m := range bd.Members {
			mf := field + "/members/" + strconv.Itoa(j)
			if err := checkMember(f.Name, mf, m); err != nil {
				return "", err
			}
			for _, perm := range perms {
				perm.Condition = cond
				b.add(EffectAllow, m, perm, source)
			}
		}
	}
	return sha256Hex(canon), nil
}

func checkMember(file, field, m string) error {
	if err := checkName(file, field, m); err != nil {
		return err
	}
	if m == "allUsers" || m == "allAuthenticatedUsers" {
		return nil
	}
	for _, p := range memberPrefixes {
		if strings.HasPrefix(m, p) && len(m) > len(p) {
			return nil
		}
	}
	return inputErr(file, field, ErrUnsupported, "member %q is not of a known form (%v, allUsers, allAuthenticatedUsers)", m, memberPrefixes)
}

// rolePermissions expands a role with gcpRoles; a role not in the table (a
// custom role, or a predefined role outside Cloud KMS) becomes one opaque
// permission "role:NAME" so it stays visible.
func rolePermissions(file, field, role string) ([]Permission, error) {
	if err := checkName(file, field, role); err != nil {
		return nil, err
	}
	if strings.Contains(role, "_withcond_") {
		return nil, inputErr(file, field, ErrIncomplete,
			"%q is a conditional binding read as policy version 1, which hides its condition; export with policy version 3 (gcloud's default)", role)
	}
	if !predefinedRolePattern.MatchString(role) && !customRolePattern.MatchString(role) {
		return nil, inputErr(file, field, ErrMalformed, "%q is not a role name (roles/NAME, projects/P/roles/NAME, organizations/O/roles/NAME)", role)
	}
	perms, ok := gcpRoles[role]
	if !ok {
		return []Permission{{Pattern: rolePrefix + role}}, nil
	}
	out := make([]Permission, len(perms))
	for i, p := range perms {
		out[i] = Permission{Pattern: p}
	}
	return out, nil
}

// RolePermissions returns the Cloud KMS permissions a GCP role holds on a key,
// its versions and import jobs, and whether the role is in the table. The
// table covers the predefined Cloud KMS roles and the basic roles, transcribed
// from Google's role reference
// (https://cloud.google.com/iam/docs/roles-permissions/cloudkms):
//
//	roles/cloudkms.admin                    cryptoKeys.* (create, delete, get, getIamPolicy, list,
//	                                        setIamPolicy, update); cryptoKeyVersions create, delete,
//	                                        destroy, get, list, restore, update,
//	                                        useTo{En,De}cryptViaDelegation; importJobs create, get,
//	                                        list, useToImport. No cryptographic use.
//	roles/cloudkms.signer                   useToSign
//	roles/cloudkms.signerVerifier           useToSign, useToVerify, viewPublicKey
//	roles/cloudkms.cryptoOperator           useToEncrypt, useToDecrypt, useTo{En,De}cryptViaDelegation,
//	                                        useToSign, useToVerify, viewPublicKey
//	roles/cloudkms.cryptoKeyEncrypterDecrypter, ...Encrypter, ...Decrypter, and their
//	...ViaDelegation variants               the matching useTo* permissions
//	roles/cloudkms.publicKeyViewer          viewPublicKey
//	roles/cloudkms.decapsulator             useToDecapsulate, viewPublicKey
//	roles/cloudkms.viewer                   get and list on keys, versions and import jobs
//	roles/cloudkms.importer                 importJobs create, get, list, useToImport
//	roles/owner                             every permission above
//	roles/editor                            every permission above but setIamPolicy
//	roles/viewer                            get and list on keys and versions, getIamPolicy
//
// Permissions on locations, key rings, projects, EKM connections and Autokey
// are left out: granted on a key they act on nothing. The basic roles are
// mapped conservatively, so that a verifier may overstate what they allow but
// not understate it. A role not in the table (a custom role, another
// service's role) is not guessed: the collector keeps it as the opaque
// permission "role:NAME".
func RolePermissions(role string) (permissions []string, known bool) {
	perms, ok := gcpRoles[role]
	return slices.Clone(perms), ok
}

// Cloud KMS permissions on a key and its versions.
const (
	keysCreate = "cloudkms.cryptoKeys.create"
	keysDelete = "cloudkms.cryptoKeys.delete"
	keysGet    = "cloudkms.cryptoKeys.get"
	keysGetIAM = "cloudkms.cryptoKeys.getIamPolicy"
	keysList   = "cloudkms.cryptoKeys.list"

	keysUpdate      = "cloudkms.cryptoKeys.update"
	versCreate      = "cloudkms.cryptoKeyVersions.create"
	versDelete      = "cloudkms.cryptoKeyVersions.delete"
	versDestroy     = "cloudkms.cryptoKeyVersions.destroy"
	versGet         = "cloudkms.cryptoKeyVersions.get"
	versList        = "cloudkms.cryptoKeyVersions.list"
	versRestore     = "cloudkms.cryptoKeyVersions.restore"
	versUpdate      = "cloudkms.cryptoKeyVersions.update"
	useToDecrypt    = "cloudkms.cryptoKeyVersions.useToDecrypt"
	useToDecryptDel = "cloudkms.cryptoKeyVersions.useToDecryptViaDelegation"
	useToEncrypt    = "cloudkms.cryptoKeyVersions.useToEncrypt"
	useToEncryptDel = "cloudkms.cryptoKeyVersions.useToEncryptViaDelegation"

	useToVerify      = "cloudkms.cryptoKeyVersions.useToVerify"
	useToDecapsulate = "cloudkms.cryptoKeyVersions.useToDecapsulate"
	viewPublicKey    = "cloudkms.cryptoKeyVersions.viewPublicKey"
	jobsCreate       = "cloudkms.importJobs.create"
	jobsGet          = "cloudkms.importJobs.get"
	jobsList         = "cloudkms.importJobs.list"
	jobsUseToImport  = "cloudkms.importJobs.useToImport"
)

var (
	keyAdminPerms = []string{keysCreate, keysDelete, keysGet, keysGetIAM, keysList, keysSetIAM, keysUpdate,
		versCreate, versDelete, versDestroy, versGet, versList, versRestore, versUpdate}
	keyUsePerms = []string{useToDecrypt, useToDecryptDel, useToEncrypt, useToEncryptDel, useToSign, useToVerify,
		useToDecapsulate, viewPublicKey}
	readPerms = []string{keysGet, keysList, versGet, versList}
)

func join(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		out = append(out, l...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func without(list []string, drop ...string) []string {
	return slices.DeleteFunc(slices.Clone(list), func(s string) bool { return slices.Contains(drop, s) })
}

// gcpRoles is the table RolePermissions documents.
var gcpRoles = map[string][]string{
	"roles/cloudkms.admin": join(without(keyAdminPerms), []string{useToDecryptDel, useToEncryptDel},
		[]string{jobsCreate, jobsGet, jobsList, jobsUseToImport}),
	"roles/cloudkms.cryptoKeyEncrypterDecrypter":              {useToDecrypt, useToEncrypt},
	"roles/cloudkms.cryptoKeyEncrypter":                       {useToEncrypt},
	"roles/cloudkms.cryptoKeyDecrypter":                       {useToDecrypt},
	"roles/cloudkms.cryptoKeyEncrypterDecrypterViaDelegation": {useToDecryptDel, useToEncryptDel},
	"roles/cloudkms.cryptoKeyEncrypterViaDelegation":          {useToEncryptDel},
	"roles/cloudkms.cryptoKeyDecrypterViaDelegation":          {useToDecryptDel},
	"roles/cloudkms.signer":                                   {useToSign},
	"roles/cloudkms.signerVerifier":                           {useToSign, useToVerify, viewPublicKey},
	"roles/cloudkms.publicKeyViewer":                          {viewPublicKey},
	"roles/cloudkms.decapsulator":                             {useToDecapsulate, viewPublicKey},
	"roles/cloudkms.cryptoOperator":                           join(without(keyUsePerms, useToDecapsulate)),
	"roles/cloudkms.viewer":                                   join(readPerms, []string{jobsGet, jobsList}),
	"roles/cloudkms.importer":                                 {jobsCreate, jobsGet, jobsList, jobsUseToImport},
	"roles/owner":                                             join(keyAdminPerms, keyUsePerms, []string{jobsCreate, jobsGet, jobsList, jobsUseToImport}),
	"roles/editor":                                            without(join(keyAdminPerms, keyUsePerms, []string{jobsCreate, jobsGet, jobsList, jobsUseToImport}), keysSetIAM),
	"roles/viewer":                                            join(readPerms, []string{keysGetIAM}),
}

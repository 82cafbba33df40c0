package main

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/seatsync/seatsync/config"
	"github.com/seatsync/seatsync/internal/smallfile"
	"github.com/seatsync/seatsync/internal/texttable"
	"github.com/seatsync/seatsync/licensing"
	"github.com/seatsync/seatsync/licensing/licensefile"
	"github.com/seatsync/seatsync/reconcile"
)

// errLicenseInvalid is `license verify`'s verdict on a licence that does
// not verify: exit 1.
var errLicenseInvalid = errors.New("the licence is not valid")

func (a *app) licenseCmd() *cobra.Command {
	c := &cobra.Command{
		Use:     "license",
		Aliases: []string{"licence"},
		Short:   "Show, verify and sign the vendor's licence file",
	}
	c.AddCommand(a.licenseShowCmd(), a.licenseVerifyCmd(), licenseSignCmd(a.stdout))
	return c
}

// policy is the licensing policy with the licence in force, for commands
// that only look at the store or change one profile: the licence file
// when it verifies, else the one the last sync remembered.
func (e *env) policy(ctx context.Context) (*licensing.Policy, error) {
	pol, _, err := licensefile.Policy(ctx, e.cfg.Licensing, e.store, time.Now(), e.log)
	if err != nil {
		return nil, fmt.Errorf("licence: %w", err)
	}
	return pol, nil
}

// licenseShow is what `license show --format json` prints.
type licenseShow struct {
	File          string              `json:"file"`
	PublicKeyFile string              `json:"public_key_file,omitempty"`
	Signed        bool                `json:"signed"`
	URL           string              `json:"license_url,omitempty"`
	State         string              `json:"state"` // valid | expired | none
	Remembered    bool                `json:"remembered,omitempty"`
	RememberedAt  *time.Time          `json:"remembered_at,omitempty"`
	Refused       string              `json:"refused,omitempty"`
	RegisteredTo  string              `json:"registered_to,omitempty"`
	Hosts         []string            `json:"hosts"`
	Issued        string              `json:"issued,omitempty"`
	Expires       string              `json:"expires,omitempty"`
	DaysLeft      *int                `json:"days_left,omitempty"`
	Limits        []licenseShowLimit  `json:"limits"`
	Pools         []licenseShowPool   `json:"pools"`
	Targets       []licenseShowTarget `json:"targets"`
	Problems      []string            `json:"problems,omitempty"`
	lic           *licensing.License  // nil with none in force
	report        *reconcile.LicenseResult
}

type licenseShowLimit struct {
	Key   string `json:"key"`
	Value any    `json:"value"` // a number, "unlimited", or true/false for a flag
	Flag  bool   `json:"flag,omitempty"`
}

type licenseShowPool struct {
	Name      string `json:"name"`
	LimitFrom string `json:"limit_from,omitempty"`
	Limit     int    `json:"limit"`
	Unlimited bool   `json:"unlimited"`
	Frozen    bool   `json:"frozen,omitempty"`
}

type licenseShowTarget struct {
	Name    string `json:"name"`
	URL     string `json:"url"`
	Covered bool   `json:"covered"`
}

func (a *app) licenseShowCmd() *cobra.Command {
	var format string
	c := &cobra.Command{
		Use:   "show",
		Short: "Show the licence in force: validity, expiry, limits, which pool uses which key, which targets it covers",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := oneOf("format", format, "text", "json"); err != nil {
				return err
			}
			e, err := a.open(c.Context(), true)
			if err != nil {
				return err
			}
			defer e.close()
			lc := e.cfg.Licensing
			if lc.LicenseFile == "" {
				return usageError{fmt.Errorf("licensing.license_file is not set in %s: there is no licence file", a.configPath)}
			}
			now := time.Now().UTC()
			pol, f, err := licensefile.Policy(c.Context(), lc, e.store, now, e.log)
			if err != nil {
				return fmt.Errorf("licence: %w", err)
			}
			show := describeLicense(e.cfg, f, pol, now)
			if format == "json" {
				enc := json.NewEncoder(a.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(show)
			}
			show.writeText(a.stdout)
			return nil
		},
	}
	a.configFlag(c)
	c.Flags().StringVar(&format, "format", "text", "text|json")
	return c
}

func describeLicense(cfg *config.Config, f *licensefile.InForce, pol *licensing.Policy, now time.Time) *licenseShow {
	lc := cfg.Licensing
	lr := reconcile.LicenseReport(f, pol, now)
	show := &licenseShow{File: lc.LicenseFile, PublicKeyFile: lc.PublicKeyFile, Signed: lc.PublicKeyFile != "", URL: lc.LicenseURL,
		State: lr.State, Remembered: f.Remembered, Refused: lr.Refused, RegisteredTo: lr.RegisteredTo,
		Issued: lr.Issued, Expires: lr.Expires, DaysLeft: lr.DaysLeft, Hosts: []string{},
		Limits: []licenseShowLimit{}, Pools: []licenseShowPool{}, Targets: []licenseShowTarget{}, lic: f.License, report: lr}
	if f.Remembered {
		at := f.RememberedAt
		show.RememberedAt = &at
	}
	if l := f.License; l != nil {
		show.Hosts = append(show.Hosts, l.Hosts...)
		for _, k := range l.Keys() {
			if v, ok := l.Flag(k); ok {
				show.Limits = append(show.Limits, licenseShowLimit{Key: k, Value: v, Flag: true})
				continue
			}
			q, _ := l.Limit(k)
			var v any = q.N
			if q.Unlimited {
				v = "unlimited"
			}
			show.Limits = append(show.Limits, licenseShowLimit{Key: k, Value: v})
		}
		if _, err := licensing.FromConfigLicensed(lc, l, now); err != nil {
			for _, e := range unjoin(err) {
				show.Problems = append(show.Problems, e.Error())
			}
		}
	}
	for _, p := range pol.Pools {
		show.Pools = append(show.Pools, licenseShowPool{Name: p.Name, LimitFrom: p.LimitFrom, Limit: p.Limit, Unlimited: p.Unlimited, Frozen: p.Frozen})
	}
	for _, t := range cfg.Targets {
		u := reconcile.TargetURL(t.Settings)
		show.Targets = append(show.Targets, licenseShowTarget{Name: t.Name, URL: u, Covered: f.License != nil && f.License.Covers(u)})
	}
	return show
}

// unjoin lists the errors errors.Join put together.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func (s *licenseShow) writeText(w io.Writer) {
	signed := "signature checked with " + s.PublicKeyFile
	if !s.Signed {
		signed = "signature NOT checked (no licensing.public_key_file)"
	}
	switch {
	case s.Refused != "":
		fmt.Fprintf(w, "licence %s: REFUSED: %s\n", s.File, s.Refused)
	case s.State == reconcile.LicenseExpired:
		fmt.Fprintf(w, "licence %s: EXPIRED on %s (%s)\n", s.File, s.Expires, signed)
	default:
		fmt.Fprintf(w, "licence %s: valid (%s)\n", s.File, signed)
	}
	if s.State != reconcile.LicenseValid {
		// What it means for seats; the refusal is said above.
		first, _, _ := strings.Cut(s.report.Text(), "\n")
		fmt.Fprintln(w, first)
	}
	if s.lic == nil {
		return
	}
	if s.Remembered {
		fmt.Fprintf(w, "in force: the remembered licence, kept by the sync of %s\n", s.RememberedAt.UTC().Format(time.RFC3339))
	}
	tw := texttable.New(w)
	if s.RegisteredTo != "" {
		fmt.Fprintf(tw, "registered to\t%s\n", s.RegisteredTo)
	}
	fmt.Fprintf(tw, "issued\t%s\n", s.Issued)
	exp := s.Expires
	if s.DaysLeft != nil && s.State == reconcile.LicenseValid {
		exp += fmt.Sprintf(" (%d days left)", *s.DaysLeft)
	}
	fmt.Fprintf(tw, "expires\t%s\n", exp)
	hosts := "any"
	if len(s.Hosts) > 0 {
		hosts = strings.Join(s.Hosts, ", ")
	}
	fmt.Fprintf(tw, "hosts\t%s\n", hosts)
	tw.Flush()

	fmt.Fprintln(w)
	fmt.Fprintln(tw, "LIMIT\tVALUE\tUSED BY")
	for _, l := range s.Limits {
		var users []string
		for _, p := range s.Pools {
			if p.LimitFrom == l.Key {
				users = append(users, "pool "+p.Name)
			}
		}
		v := fmt.Sprint(l.Value)
		if l.Flag {
			v = map[bool]string{true: "yes", false: "no"}[l.Value.(bool)]
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", texttable.Cell(l.Key), texttable.Cell(v), strings.Join(users, ", "))
	}
	tw.Flush()

	fmt.Fprintln(w)
	fmt.Fprintln(tw, "POOL\tLIMIT FROM\tLIMIT")
	for _, p := range s.Pools {
		from, limit := p.LimitFrom, fmt.Sprint(p.Limit)
		if from == "" {
			from = "(configured)"
		}
		if p.Unlimited {
			limit = "unlimited"
		}
		if p.Frozen {
			limit += " (frozen: no new seats)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", p.Name, from, limit)
	}
	tw.Flush()

	if len(s.Targets) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(tw, "TARGET\tURL\tCOVERED")
		for _, t := range s.Targets {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", t.Name, t.URL, map[bool]string{true: "yes", false: "NO"}[t.Covered])
		}
		tw.Flush()
	}
	for _, p := range s.Problems {
		fmt.Fprintf(w, "\nproblem: %s\n", p)
	}
}

func (a *app) licenseVerifyCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "verify [LICENSE]",
		Short: "Check a licence file (licensing.license_file by default) and its signature: exit 0 valid, 1 invalid",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			cfg, err := a.loadConfig()
			if err != nil {
				return err
			}
			lc := cfg.Licensing
			path := lc.LicenseFile
			if len(args) == 1 {
				path = args[0]
			}
			if path == "" {
				return usageError{errors.New("no licence to verify: give LICENSE, or set licensing.license_file")}
			}
			lic, err := readLicense(path, lc.PublicKeyFile)
			if err == nil {
				_, err = licensing.FromConfigLicensed(lc, lic, time.Now())
			}
			if err == nil && lic.Expired(time.Now()) {
				err = fmt.Errorf("it expired on %s: nobody new gets a seat with it", lic.ExpiresString())
			}
			if err != nil {
				fmt.Fprintf(a.stdout, "%s: invalid: %v\n", path, err)
				return fmt.Errorf("%w: %s", errLicenseInvalid, path)
			}
			signed := "signature checked with " + lc.PublicKeyFile
			if lc.PublicKeyFile == "" {
				signed = "signature not checked: no licensing.public_key_file"
			}
			fmt.Fprintf(a.stdout, "%s: valid, issued %s, expires %s (%s)\n", path, lic.Issued.Format(time.DateOnly), lic.ExpiresString(), signed)
			return nil
		},
	}
	a.configFlag(c)
	return c
}

// readLicense reads and checks a licence file with the public key file
// (none: the signature is not checked).
func readLicense(path, keyFile string) (*licensing.License, error) {
	var pub ed25519.PublicKey
	if keyFile != "" {
		k, err := licensefile.ReadPublicKey(keyFile)
		if err != nil {
			return nil, err
		}
		pub = k
	}
	return licensefile.Read(path, pub)
}

func licenseSignCmd(stdout io.Writer) *cobra.Command {
	var keyFile string
	c := &cobra.Command{
		Use:   "sign --key PEM LICENSE",
		Short: "Sign a licence file with the vendor's ed25519 private key (PKCS#8 PEM): writes LICENSE.sig",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			if keyFile == "" {
				return usageError{errors.New("missing --key PEM: the vendor's private key (openssl genpkey -algorithm ed25519 -out vendor.pem)")}
			}
			path := args[0]
			pemBytes, err := smallfile.Read(keyFile, config.MaxSecretFileBytes, "a private key")
			if err != nil {
				return usageError{fmt.Errorf("--key: %w", err)}
			}
			key, err := licensing.ParsePrivateKey(pemBytes)
			if err != nil {
				return usageError{fmt.Errorf("--key %s: %w", keyFile, err)}
			}
			data, err := smallfile.Read(path, licensefile.MaxFileBytes, "a licence file")
			if err != nil {
				return err
			}
			// A file seatsync would refuse is not worth signing.
			if _, err := licensing.ParseLicense(data); err != nil {
				return fmt.Errorf("%s: not signed: %w", path, err)
			}
			sig := path + licensefile.SigSuffix
			if err := os.WriteFile(sig, licensing.Sign(data, key), 0o644); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "wrote %s\n", sig)
			return nil
		},
	}
	c.Flags().StringVar(&keyFile, "key", "", "the vendor's PEM PKCS#8 ed25519 private key")
	return c
}

// licenseProblems checks the licence a configuration names, for
// `validate`: a licence that is present but refused, and a limit_from key
// it lacks, are problems; a licence not there yet, one that has expired
// and a target it does not cover are warnings. It returns the line
// validate prints about the licence ("" when there is none).
func licenseProblems(cfg *config.Config) (problems, warnings config.Problems, verdict string) {
	lc := cfg.Licensing
	if lc.LicenseFile == "" {
		return nil, nil, ""
	}
	at := func(path, msg string) config.Problem {
		return config.Problem{Path: path, Line: cfg.Line(path), Message: msg}
	}
	if _, err := os.Stat(lc.LicenseFile); errors.Is(err, fs.ErrNotExist) {
		warnings = append(warnings, at("licensing.license_file", lc.LicenseFile+
			" does not exist (yet): pools with limit_from give no new seats until it does, or keep the licence the last sync remembered"))
		return nil, warnings, ""
	}
	if lc.PublicKeyFile != "" {
		if _, err := licensefile.ReadPublicKey(lc.PublicKeyFile); err != nil {
			return config.Problems{at("licensing.public_key_file", strings.TrimPrefix(err.Error(), "licensing.public_key_file: "))}, nil, ""
		}
	}
	lic, err := readLicense(lc.LicenseFile, lc.PublicKeyFile)
	if err != nil {
		return config.Problems{at("licensing.license_file", "the licence was refused: "+err.Error())}, nil, ""
	}
	now := time.Now()
	if _, err := licensing.FromConfigLicensed(lc, lic, now); err != nil {
		var missing *licensing.MissingKeyError
		for _, e := range unjoin(err) {
			if errors.As(e, &missing) {
				path := fmt.Sprintf("licensing.pools[%d].limit_from", missing.Index)
				problems = append(problems, at(path, strings.TrimPrefix(e.Error(), path+": ")))
			}
		}
	}
	if lic.Expired(now) {
		warnings = append(warnings, at("licensing.license_file", fmt.Sprintf("the licence expired on %s: nobody new gets a seat until it is renewed", lic.ExpiresString())))
	}
	for i, t := range cfg.Targets {
		if u := reconcile.TargetURL(t.Settings); u != "" && !lic.Covers(u) {
			path := fmt.Sprintf("targets[%d].url", i)
			warnings = append(warnings, at(path, fmt.Sprintf("%s is not covered by the licence (its hosts: %s)", u, strings.Join(lic.Hosts, ", "))))
		}
	}
	signed := "signature checked"
	if lc.PublicKeyFile == "" {
		signed = "signature not checked"
	}
	return problems, warnings, fmt.Sprintf("licence %s: ok, issued %s, expires %s (%s)", lc.LicenseFile, lic.Issued.Format(time.DateOnly), lic.ExpiresString(), signed)
}

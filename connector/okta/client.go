package okta

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"strings"

	"github.com/okta/okta-sdk-golang/v2/okta"

	"github.com/seatsync/seatsync/config"
	"github.com/seatsync/seatsync/internal/smallfile"
)

// wipe resets the SDK's configuration to its zero value. okta.NewClient
// reads ~/.okta/okta.yaml, the SDK's own .okta.yaml and the OKTA_*
// environment variables before it applies its options; passing wipe as the
// first option throws all of that away, so only what seatsync sets below
// counts. (The config type is unexported; the type parameter lets the
// compiler name it for us.)
func wipe[T any](c *T) {
	var zero T
	*c = zero
}

// newClient builds an SDK client for one pull, with t under it.
func (s *source) newClient(ctx context.Context, t *transport) (*okta.Client, error) {
	opts, err := s.clientOptions(t)
	if err != nil {
		return nil, err
	}
	_, c, err := okta.NewClient(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("okta client: %w", err)
	}
	return c, nil
}

// clientOptions is every SDK setting seatsync makes, starting with wipe.
func (s *source) clientOptions(t *transport) ([]okta.ConfigSetter, error) {
	var reset okta.ConfigSetter = wipe
	opts := []okta.ConfigSetter{
		reset,
		okta.WithOrgUrl(s.orgURL),
		okta.WithHttpClientPtr(&http.Client{Transport: t}),
		okta.WithCache(false),
		okta.WithUserAgentExtra("seatsync"),
		// The transport does the retries, the waiting and the timeouts.
		okta.WithRateLimitMaxRetries(0),
		okta.WithRateLimitMaxBackOff(0),
		okta.WithRequestTimeout(0),
		okta.WithConnectionTimeout(int64(s.timeout.Seconds()) + 1),
		// http is only accepted for loopback URLs by config validation.
		okta.WithTestingDisableHttpsCheck(strings.HasPrefix(s.orgURL, "http://")),
	}
	switch s.auth {
	case "private_key":
		pemKey, err := readPrivateKey(s.keyFile)
		if err != nil {
			return nil, err
		}
		opts = append(opts,
			okta.WithAuthorizationMode("PrivateKey"),
			okta.WithClientId(s.clientID),
			okta.WithScopes(s.scopes),
			okta.WithPrivateKey(pemKey))
	default:
		opts = append(opts,
			okta.WithAuthorizationMode("SSWS"),
			okta.WithToken(s.token.Reveal()))
	}
	return opts, nil
}

// readPrivateKey reads an RSA private key in PEM, PKCS#1 ("RSA PRIVATE
// KEY") or PKCS#8 ("PRIVATE KEY", as the Okta admin console and openssl
// genpkey write it), and returns it as the PKCS#1 PEM the SDK signs with.
func readPrivateKey(path string) (string, error) {
	// A key is a secret file: a regular file of at most 64 KiB, read
	// without waiting on a named pipe.
	b, err := smallfile.Read(path, config.MaxSecretFileBytes, "a secret file")
	if err != nil {
		return "", fmt.Errorf("private_key_file: %w", err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return "", fmt.Errorf("private_key_file %s: no PEM block; save the key in PEM format (-----BEGIN PRIVATE KEY-----)", path)
	}
	var key *rsa.PrivateKey
	switch block.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "PRIVATE KEY":
		var k any
		k, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		if err == nil {
			var ok bool
			if key, ok = k.(*rsa.PrivateKey); !ok {
				return "", fmt.Errorf("private_key_file %s: a %T key; the Okta SDK signs with RSA keys only", path, k)
			}
		}
	default:
		return "", fmt.Errorf("private_key_file %s: a %q PEM block, not a private key", path, block.Type)
	}
	if err != nil {
		return "", fmt.Errorf("private_key_file %s: %w", path, err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})), nil
}

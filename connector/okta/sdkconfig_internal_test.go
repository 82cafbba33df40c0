package okta

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/okta/okta-sdk-golang/v2/okta"
	"go.uber.org/zap"
	"gopkg.in/yaml.v3"

	"github.com/seatsync/seatsync/config"
)

// sdkYAML is what an admin's ~/.okta/okta.yaml might hold.
const sdkYAML = `
okta:
  client:
    orgUrl: https://other.okta.com
    token: other-token
    authorizationMode: Bearer
    clientId: 0oaother
    privateKeyId: kid-other
    scopes: [okta.users.manage]
    connectionTimeout: 1
    requestTimeout: 1
    rateLimit: {maxRetries: 9, maxBackoff: 99}
    cache: {enabled: true}
    proxy: {host: proxy.example.com, port: 3128, username: u, password: p}
  testing:
    disableHttpsCheck: true
`

// readSDKYAML does what okta.NewClient does with ~/.okta/okta.yaml.
func readSDKYAML[T any](c *T) {
	if err := yaml.Unmarshal([]byte(sdkYAML), c); err != nil {
		panic(err)
	}
}

// TestSDKConfigWiped feeds an okta.yaml into the SDK configuration the
// way okta.NewClient reads ~/.okta/okta.yaml (HOME cannot redirect that
// read: the SDK finds the home directory through os/user), and checks that
// nothing of it survives seatsync's options.
func TestSDKConfigWiped(t *testing.T) {
	cfg := config.Source{Name: "okta", Type: "okta", Settings: &Settings{OrgURL: "https://example.okta.com",
		Token: config.NewSecret("ours"), Timeout: config.Duration{Duration: 30 * time.Second}}}
	src, err := New(cfg, zap.NewNop(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := src.(*source)
	tr := &transport{}
	opts, err := s.clientOptions(tr)
	if err != nil {
		t.Fatal(err)
	}
	var load okta.ConfigSetter = readSDKYAML

	// Control: without the wipe, the file's proxy would survive.
	_, c, err := okta.NewClient(context.Background(), append([]okta.ConfigSetter{load}, opts[1:]...)...)
	if err != nil {
		t.Fatal(err)
	}
	if c.GetConfig().Okta.Client.Proxy.Host != "proxy.example.com" {
		t.Fatal("control failed: the yaml was not read into the SDK config")
	}

	_, c, err = okta.NewClient(context.Background(), append([]okta.ConfigSetter{load}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	got := c.GetConfig()
	cl := got.Okta.Client
	checks := []struct {
		what string
		ok   bool
	}{
		{"org url", cl.OrgUrl == "https://example.okta.com"},
		{"token", cl.Token == "ours"},
		{"authorization mode", cl.AuthorizationMode == "SSWS"},
		{"client id", cl.ClientId == "" && cl.PrivateKeyId == "" && cl.PrivateKey == "" && cl.ClientAssertion == ""},
		{"scopes", cl.Scopes == nil},
		{"proxy", cl.Proxy.Host == "" && cl.Proxy.Port == 0 && cl.Proxy.Username == "" && cl.Proxy.Password == ""},
		{"cache", !cl.Cache.Enabled},
		{"retries", cl.RateLimit.MaxRetries == 0 && cl.RateLimit.MaxBackoff == 0},
		{"request timeout", cl.RequestTimeout == 0},
		{"https check", !got.Okta.Testing.DisableHttpsCheck},
		{"http client", got.HttpClient != nil && got.HttpClient.Transport == http.RoundTripper(tr)},
	}
	for _, ch := range checks {
		if !ch.ok {
			t.Errorf("%s: taken from okta.yaml: %+v", ch.what, cl)
		}
	}
}

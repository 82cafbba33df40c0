package config

// The loader's own tests plug in these small fake source types: the real
// ones live in the connector packages, which import this one (their tests
// check their keys, defaults and messages through ParseWith).

// fileSettings are the keys of a fake "file" source.
type fileSettings struct {
	Path      string `yaml:"path"`
	Delimiter string `yaml:"delimiter"`
}

func (s *fileSettings) Defaults(e *Entry) { e.Resolve(&s.Path) }

func (s *fileSettings) Validate(e *Entry) { e.NotEmpty("path", s.Path) }

// dirSettings are the keys of a fake "dir" source.
type dirSettings struct {
	URL          StringList `yaml:"url"`
	BaseDN       string     `yaml:"base_dn"`
	BindDN       string     `yaml:"bind_dn"`
	BindPassword Secret     `yaml:"bind_password"`
	TLS          struct {
		Mode   string `yaml:"mode"`
		CAFile string `yaml:"ca_file"`
	} `yaml:"tls"`
	PageSize int      `yaml:"page_size"`
	Timeout  Duration `yaml:"timeout"`
}

func (s *dirSettings) Defaults(e *Entry) {
	if !e.Given("page_size") {
		s.PageSize = 500
	}
	e.Resolve(&s.TLS.CAFile)
}

func (s *dirSettings) Validate(e *Entry) {
	if len(s.URL) == 0 {
		e.Add("url", "required for a dir source")
	}
	e.NotEmpty("base_dn", s.BaseDN)
}

// apiSettings are the keys of a fake "api" source.
type apiSettings struct {
	OrgURL         string   `yaml:"org_url"`
	Token          Secret   `yaml:"token"`
	Filter         string   `yaml:"filter"`
	RateLimitShare Percent  `yaml:"rate_limit_share"`
	Timeout        Duration `yaml:"timeout"`
}

func (s *apiSettings) Defaults(*Entry) {}

func (s *apiSettings) Validate(e *Entry) {
	if !e.Secret("token", s.Token) {
		e.Add("token", "required (or token_file)")
	}
}

var testPlugins = Plugins{Sources: Kinds{
	"file": func() Settings { return &fileSettings{} },
	"dir":  func() Settings { return &dirSettings{} },
	"api":  func() Settings { return &apiSettings{} },
}}

// parse is Parse with the fake source types.
func parse(data []byte, path string, env func(string) (string, bool)) (*Config, error) {
	return ParseWith(data, path, env, testPlugins)
}

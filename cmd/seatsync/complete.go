package main

import (
	"context"
	"regexp"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/seatsync/seatsync/config"
	"github.com/seatsync/seatsync/model"
)

// Shell completion (`seatsync completion bash|zsh|fish|powershell`, which
// cobra provides): flags complete their values, and the profiles actions
// complete usernames. Values that come from the configuration (areas,
// sources, targets) or the store (usernames) are read from the file -c
// names; without one, nothing is offered.

// choices finds the values a flag's usage lists, as "text|json|csv".
var choices = regexp.MustCompile(`[a-z_]+(\|[a-z_]+)+`)

// addCompletions registers completions on every command below root.
func addCompletions(root *cobra.Command) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		c.Flags().VisitAll(func(f *pflag.Flag) {
			if fn := flagValues(f); fn != nil {
				_ = c.RegisterFlagCompletionFunc(f.Name, fn) // only fails for an unknown or doubly registered flag
			}
		})
		if strings.HasPrefix(c.Use, "block ") || strings.HasPrefix(c.Use, "unblock ") || strings.HasPrefix(c.Use, "delete ") {
			c.ValidArgsFunction = usernames
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

type completeFunc = func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective)

func fixedValues(values ...string) completeFunc {
	return cobra.FixedCompletions(values, cobra.ShellCompDirectiveNoFileComp)
}

// flagValues is the completion of a flag, or nil for one that takes free
// text or a file.
func flagValues(f *pflag.Flag) completeFunc {
	switch f.Name {
	case "state":
		return fixedValues(string(model.Active), string(model.Blocked))
	case "reason":
		return fixedValues(string(model.ReasonLicense), string(model.ReasonAdmin), string(model.ReasonSourceDisabled), string(model.ReasonLeftSource))
	case "area":
		return fromConfig(func(cfg *config.Config) (out []string) {
			for _, p := range cfg.Licensing.Pools {
				out = append(out, p.Areas...)
			}
			return out
		})
	case "source":
		return fromConfig(func(cfg *config.Config) (out []string) {
			for _, s := range cfg.Sources {
				out = append(out, s.Name)
			}
			return out
		})
	case "target":
		return fromConfig(func(cfg *config.Config) (out []string) {
			for _, t := range cfg.Targets {
				out = append(out, t.Name)
			}
			return out
		})
	case "format":
		if m := choices.FindString(f.Usage); m != "" {
			return fixedValues(strings.Split(m, "|")...)
		}
	}
	return nil
}

// loadFor loads the configuration -c names on the command being
// completed; nil when there is none or it does not load.
func loadFor(c *cobra.Command) *config.Config {
	path, err := c.Flags().GetString("config")
	if err != nil || path == "" {
		return nil
	}
	cfg, err := config.Load(path, plugins())
	if err != nil {
		return nil
	}
	return cfg
}

func fromConfig(values func(*config.Config) []string) completeFunc {
	return func(c *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
		cfg := loadFor(c)
		if cfg == nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		out := values(cfg)
		slices.Sort(out)
		return slices.Compact(out), cobra.ShellCompDirectiveNoFileComp
	}
}

// usernames completes the profiles a block, unblock or delete may name,
// read from the store without creating it.
func usernames(c *cobra.Command, args []string, prefix string) ([]string, cobra.ShellCompDirective) {
	cfg := loadFor(c)
	if cfg == nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	a := &app{stdout: c.OutOrStdout(), stderr: c.ErrOrStderr()}
	e, err := a.openEnv(context.Background(), cfg, true)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	defer e.close()
	profiles, err := e.store.Profiles(context.Background())
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []string
	for _, p := range profiles {
		if strings.HasPrefix(model.FoldUsername(p.Username), model.FoldUsername(prefix)) && !slices.Contains(args, p.Username) {
			out = append(out, p.Username)
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

package connector

import "context"

type pageHookKey struct{}

// WithPageHook returns a context whose pulls call hook after each page a
// paging connector reads, so a runner can show progress.
func WithPageHook(ctx context.Context, hook func()) context.Context {
	return context.WithValue(ctx, pageHookKey{}, hook)
}

// PageRead tells the context's page hook, if any, that a page was read.
// Connectors that page (ldap, okta) call it after every page.
func PageRead(ctx context.Context) {
	if hook, ok := ctx.Value(pageHookKey{}).(func()); ok {
		hook()
	}
}

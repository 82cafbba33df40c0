package okta

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// maxBody bounds one response body (a page of 200 users is well under 1 MiB).
const maxBody = 64 << 20

// maxWait caps one wait for a rate limit window: Okta's windows are a minute.
const maxWait = 5 * time.Minute

// transport is the http.RoundTripper under the SDK. It
//
//   - gives each attempt `timeout` to answer and deliver its whole body;
//   - reads X-Rate-Limit-Limit/-Remaining/-Reset on every response and,
//     once seatsync has used its share of a limit, waits for the reset
//     before sending the next request of that bucket;
//   - on a 429 waits until X-Rate-Limit-Reset (measured against the
//     response's Date, so a skewed local clock does not matter) and retries,
//     at most maxRetries times, then fails with ErrRateLimited.
//
// Okta counts limits per endpoint; a bucket here is the request path with
// ids replaced, which is close enough to Okta's groupings for reading.
type transport struct {
	base       http.RoundTripper
	timeout    time.Duration
	share      float64
	maxRetries int
	now        func() time.Time
	sleep      func(context.Context, time.Duration) error
	log        *zap.Logger

	mu      sync.Mutex
	buckets map[string]*bucket
	st      stats
	// first is Okta's clock (Date) on the first answer of the read.
	first time.Time
}

type bucket struct {
	limit, remaining int
	resetAt          time.Time // on the local clock
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	key := bucketOf(req)
	for attempt := 0; ; attempt++ {
		if err := t.throttle(ctx, key); err != nil {
			return nil, err
		}
		r := req
		if attempt > 0 && req.Body != nil && req.GetBody != nil {
			body, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			r = req.Clone(ctx)
			r.Body = body
		}
		resp, err := t.once(r)
		if err != nil {
			return nil, err
		}
		wait := t.observe(key, resp)
		if resp.StatusCode != http.StatusTooManyRequests {
			return resp, nil
		}
		if attempt >= t.maxRetries {
			return nil, fmt.Errorf("%w: %s still answered 429 Too Many Requests after %d retries; "+
				"other clients may be using the org's limit, or lower rate_limit_share", ErrRateLimited, req.URL.Path, t.maxRetries)
		}
		t.log.Warn("okta rate limit hit, waiting for the reset",
			zap.String("path", req.URL.Path), zap.Duration("wait", wait), zap.Int("retry", attempt+1))
		t.mu.Lock()
		t.st.retries++
		t.st.waited += wait
		t.mu.Unlock()
		if err := t.sleep(ctx, wait); err != nil {
			return nil, err
		}
	}
}

// once sends one attempt and reads its whole body under the timeout.
func (t *transport) once(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(req.Context(), t.timeout)
	defer cancel()
	t.mu.Lock()
	t.st.requests++
	t.mu.Unlock()
	resp, err := t.base.RoundTrip(req.WithContext(ctx))
	var body []byte
	if err == nil {
		body, err = io.ReadAll(io.LimitReader(resp.Body, maxBody))
		resp.Body.Close()
	}
	if err != nil {
		return nil, t.wrap(ctx, req, err)
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

// wrap names a transport failure. A dropped connection is reported as
// ErrConnection without io.EOF in the chain on purpose: the SDK retries
// io.EOF errors without any bound.
func (t *transport) wrap(ctx context.Context, req *http.Request, err error) error {
	switch {
	case req.Context().Err() != nil:
		return req.Context().Err()
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("%w: %s %s: no complete answer within %s (timeout)", ErrTimeout, req.Method, req.URL.Path, t.timeout)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w: %s %s: the connection was closed before the answer was complete", ErrConnection, req.Method, req.URL.Path)
	}
	return fmt.Errorf("%w: %s %s: %w", ErrConnection, req.Method, req.URL.Path, err)
}

// throttle waits for the bucket's reset when seatsync has used its share
// of the bucket's limit.
func (t *transport) throttle(ctx context.Context, key string) error {
	t.mu.Lock()
	b := t.buckets[key]
	var wait time.Duration
	if b != nil && b.limit > 0 {
		floor := float64(b.limit) * (1 - t.share)
		if float64(b.remaining) <= floor {
			wait = b.resetAt.Sub(t.now())
		}
	}
	if wait > 0 {
		t.st.waited += wait
		// The window will have turned over: forget it until the next answer.
		delete(t.buckets, key)
	}
	t.mu.Unlock()
	if wait <= 0 {
		return nil
	}
	t.log.Debug("okta rate limit share used, waiting for the reset",
		zap.String("bucket", key), zap.Duration("wait", wait))
	return t.sleep(ctx, wait)
}

// observe records a response's rate limit headers and returns how long to
// wait until its window resets (from X-Rate-Limit-Reset and Date, plus a
// second for the rounding of both to whole seconds).
func (t *transport) observe(key string, resp *http.Response) time.Duration {
	h := resp.Header
	limit, errL := strconv.Atoi(h.Get("X-Rate-Limit-Limit"))
	remaining, errR := strconv.Atoi(h.Get("X-Rate-Limit-Remaining"))
	reset, errS := strconv.ParseInt(h.Get("X-Rate-Limit-Reset"), 10, 64)
	now := t.now()
	wait := time.Minute // Okta's window, when the headers are missing
	date, errD := http.ParseTime(h.Get("Date"))
	if errD == nil {
		t.mu.Lock()
		if t.first.IsZero() {
			t.first = date
		}
		t.mu.Unlock()
	}
	if errS == nil {
		serverNow := now
		if errD == nil {
			serverNow = date
		}
		wait = time.Unix(reset, 0).Sub(serverNow) + time.Second
	}
	wait = min(max(wait, time.Second), maxWait)
	if errL == nil && errR == nil {
		t.mu.Lock()
		t.buckets[key] = &bucket{limit: limit, remaining: remaining, resetAt: now.Add(wait)}
		t.mu.Unlock()
	}
	return wait
}

// bucketOf groups requests the way Okta counts them: by method and path,
// with ids replaced by "{id}".
func bucketOf(req *http.Request) string {
	parts := strings.Split(strings.Trim(req.URL.Path, "/"), "/")
	// /api/v1/<collection>/<id>/<sub>...
	for i := 3; i < len(parts); i += 2 {
		parts[i] = "{id}"
	}
	return req.Method + " /" + strings.Join(parts, "/")
}

// sleepCtx waits for d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// defaultTransport is a fresh copy of http.DefaultTransport, so one pull's
// idle connections are its own.
func defaultTransport() http.RoundTripper {
	return http.DefaultTransport.(*http.Transport).Clone()
}

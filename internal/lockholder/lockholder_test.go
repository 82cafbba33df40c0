package lockholder

import (
	"os"
	"os/exec"
	"testing"
)

func TestParseRoundTrip(t *testing.T) {
	h := Holder{RunID: "01JF", Host: "app-1", PID: 4242, Start: "98765"}
	got, ok := Parse(h.String())
	if !ok || got != h {
		t.Fatalf("Parse(%q) = %+v, %v; want %+v", h.String(), got, ok, h)
	}
	for _, s := range []string{"", "e2e-other-process", "run@host", "run@host/x", "@host/1", "run@/1", "run@host/0/1", "run@host/1/2/3"} {
		if _, ok := Parse(s); ok {
			t.Errorf("Parse(%q) accepted a holder it did not write", s)
		}
	}
	if old, ok := Parse("01JF@app-1/77"); !ok || old.PID != 77 || old.Start != "" {
		t.Errorf("Parse of a holder without a start time = %+v, %v", old, ok)
	}
}

func TestGone(t *testing.T) {
	self := Self("run")
	if gone, why := self.Gone(); gone {
		t.Errorf("this process is taken for gone: %s", why)
	}
	// A process that has exited and been reaped.
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	dead := Holder{RunID: "run", Host: self.Host, PID: cmd.Process.Pid}
	if gone, why := dead.Gone(); !gone || why == "" {
		t.Errorf("an exited process (pid %d) is not taken for gone", dead.PID)
	}
	// Another host's holder is never taken for gone.
	if gone, _ := (Holder{RunID: "run", Host: self.Host + "-other", PID: cmd.Process.Pid}).Gone(); gone {
		t.Error("a holder on another host is taken for gone")
	}
	// The same PID with another start time: this process was restarted.
	if self.Start != "" {
		restarted := self
		restarted.Start = "1"
		if gone, _ := restarted.Gone(); !gone {
			t.Error("this PID with another start time is not taken for gone")
		}
	}
}

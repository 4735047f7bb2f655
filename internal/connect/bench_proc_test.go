package connect_test

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// The resources BenchmarkConnectors reports come from Linux's /proc.
// Elsewhere they read as zero and are not reported.

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's times: 100 on
// every Linux architecture Go runs on.
const clockTicks = 100

// procStat is what the benchmarks use of /proc/<pid>/stat.
type procStat struct {
	comm                         string
	ppid                         int
	utime, stime, cutime, cstime int64 // clock ticks
}

// parseProcStat parses a /proc/<pid>/stat line. The command name is in
// parentheses and may itself hold spaces and parentheses, so the fields
// are counted from the last ')'.
func parseProcStat(line string) (procStat, error) {
	open, end := strings.IndexByte(line, '('), strings.LastIndexByte(line, ')')
	if open < 0 || end < open {
		return procStat{}, fmt.Errorf("stat %q: no (comm)", line)
	}
	f := strings.Fields(line[end+1:])
	// f[0] is field 3 (state): ppid is field 4, utime..cstime 14..17.
	if len(f) < 15 {
		return procStat{}, fmt.Errorf("stat %q: %d fields after comm", line, len(f))
	}
	st := procStat{comm: line[open+1 : end]}
	var err error
	num := func(i int) int64 {
		n, e := strconv.ParseInt(f[i], 10, 64)
		if e != nil && err == nil {
			err = fmt.Errorf("stat %q: field %d: %v", line, i+3, e)
		}
		return n
	}
	st.ppid = int(num(1))
	st.utime, st.stime, st.cutime, st.cstime = num(11), num(12), num(13), num(14)
	return st, err
}

func readProcStat(pid int) (procStat, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, false
	}
	st, err := parseProcStat(string(b))
	return st, err == nil
}

// procCPU is the CPU seconds pid has used (user + system).
func procCPU(pid int) float64 {
	st, ok := readProcStat(pid)
	if !ok {
		return 0
	}
	return float64(st.utime+st.stime) / clockTicks
}

// treeCPU is the CPU seconds used by root, its children alive now and the
// children it has reaped (cutime, cstime): a PostgreSQL server's backends
// come and go with their connections, and a backend that exits between two
// readings moves from the children's sum into the postmaster's cutime.
func treeCPU(root int) float64 {
	st, ok := readProcStat(root)
	if !ok {
		return 0
	}
	ticks := st.utime + st.stime + st.cutime + st.cstime
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == root {
			continue
		}
		if c, ok := readProcStat(pid); ok && c.ppid == root {
			ticks += c.utime + c.stime + c.cutime + c.cstime
		}
	}
	return float64(ticks) / clockTicks
}

// resetPeakRSS sets pid's VmHWM back to its current RSS (Linux's
// clear_refs "5"), so the peak read later is the measured phase's.
func resetPeakRSS(pid int) {
	_ = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

// peakRSS is pid's VmHWM in MiB.
func peakRSS(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	return parseVmHWM(b)
}

func parseVmHWM(status []byte) float64 {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 3 && f[0] == "VmHWM:" && f[2] == "kB" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

// meter measures the CPU used by braid, the S3 server and PostgreSQL
// between start and stop (a zero pid is not measured).
type meter struct {
	braid, s3srv, pg       int
	braidCPU, s3CPU, pgCPU float64
	braidPeak              float64
}

func startMeter(braid, s3srv, pg int) *meter {
	m := &meter{braid: braid, s3srv: s3srv, pg: pg, braidCPU: procCPU(braid)}
	if s3srv != 0 {
		m.s3CPU = procCPU(s3srv)
	}
	if pg != 0 {
		m.pgCPU = treeCPU(pg)
	}
	return m
}

func (m *meter) stop() *meter {
	m.braidCPU = procCPU(m.braid) - m.braidCPU
	m.braidPeak = peakRSS(m.braid)
	if m.s3srv != 0 {
		m.s3CPU = procCPU(m.s3srv) - m.s3CPU
	}
	if m.pg != 0 {
		m.pgCPU = treeCPU(m.pg) - m.pgCPU
	}
	return m
}

// report adds the measures as metrics; moved is the bytes of values the
// phase moved.
func (m *meter) report(b *testing.B, moved int64) {
	b.ReportMetric(m.braidCPU, "braid-cpu-s")
	b.ReportMetric(m.braidCPU/(float64(moved)/1e9), "braid-cpu-s/GB")
	b.ReportMetric(m.braidPeak, "braid-peak-MiB")
	if m.s3srv != 0 {
		b.ReportMetric(m.s3CPU, "s3srv-cpu-s")
	}
	if m.pg != 0 {
		b.ReportMetric(m.pgCPU, "pg-cpu-s")
	}
}

func TestParseProcStat(t *testing.T) {
	// A real line's shape, with a command name holding ") (" and spaces.
	line := "4242 (post ) (gres) S 17 4242 4242 0 -1 4194560 900 0 0 0 1234 567 89 10 20 0 1 0 100 1000000 200 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n"
	st, err := parseProcStat(line)
	if err != nil {
		t.Fatal(err)
	}
	want := procStat{comm: "post ) (gres", ppid: 17, utime: 1234, stime: 567, cutime: 89, cstime: 10}
	if st != want {
		t.Fatalf("got %+v, want %+v", st, want)
	}
	for _, bad := range []string{"", "4242 post S 1", "4242 (x) S 17 1 2"} {
		if _, err := parseProcStat(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	// This process is visible to itself: its parent and a running clock.
	if self, ok := readProcStat(os.Getpid()); ok && self.ppid != os.Getppid() {
		t.Fatalf("/proc/self/stat ppid %d, want %d", self.ppid, os.Getppid())
	}
}

func TestParseVmHWM(t *testing.T) {
	status := []byte("Name:\tbraid\nVmPeak:\t  999999 kB\nVmHWM:\t   51200 kB\nVmRSS:\t   40000 kB\n")
	if got := parseVmHWM(status); got != 50 {
		t.Fatalf("VmHWM %v MiB, want 50", got)
	}
	if got := parseVmHWM([]byte("Name:\tx\n")); got != 0 {
		t.Fatalf("no VmHWM line: %v, want 0", got)
	}
}

// TestTreeCPUCountsReapedChildren: a child that burned CPU and exited
// still counts (PostgreSQL's backends end with their connections).
func TestTreeCPUCountsReapedChildren(t *testing.T) {
	if _, ok := readProcStat(os.Getpid()); !ok {
		t.Skip("no /proc")
	}
	before := treeCPU(os.Getpid())
	out, err := exec.Command("sh", "-c", `i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; echo $i`).CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v %s", err, out)
	}
	// The child is reaped: only cutime/cstime hold its time now.
	if used := treeCPU(os.Getpid()) - before; used < 0.05 {
		t.Fatalf("tree CPU grew by %.2fs over a child that used CPU", used)
	}
}

package main

import "testing"

func TestMaxFailuresNeedsBatch(t *testing.T) {
	code, _, errOut := runCLI(t, "--inventory", full, "--max-failures", "1", "all")
	if code != exitUsage || errOut != "lollypops: --max-failures needs --batch\nlollypops: hint: lollypops --batch 10% --max-failures 2 all\n" {
		t.Errorf("exit %d: %s", code, errOut)
	}
}

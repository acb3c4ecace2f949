package paging

import (
	"errors"
	"testing"

	"github.com/xascript/xascript/vmi"
)

func TestModeFromCPU(t *testing.T) {
	const (
		linuxCR0  = 0x80050033 // PG WP NE ET MP PE, as a Linux x86-64 guest runs
		linuxCR4  = 0x3506f0   // ... PAE PSE, no LA57
		linuxEFER = 0xd01      // NXE LMA LME SCE
	)
	tests := []struct {
		name          string
		cpu           vmi.CPUState
		want          Mode
		wantErr       error
		wantPtr       int
		wantModeNamed string
	}{
		{"linux x86-64", vmi.CPUState{Known: true, CR0: linuxCR0, CR4: linuxCR4, EFER: linuxEFER}, IA32e, nil, 8, "4-level"},
		{"linux x86-64 LA57", vmi.CPUState{Known: true, CR0: linuxCR0, CR4: linuxCR4 | 1<<12, EFER: linuxEFER}, LA57, nil, 8, "5-level"},
		{"LME recorded without LMA", vmi.CPUState{Known: true, CR0: linuxCR0, CR4: linuxCR4, EFER: 0x100}, IA32e, nil, 8, "4-level"},
		{"linux i386 PAE", vmi.CPUState{Known: true, CR0: 0x80050033, CR4: 0x6f0}, PAE, nil, 4, "PAE"},
		{"LA57 ignored outside IA-32e", vmi.CPUState{Known: true, CR0: 0x80050033, CR4: 0x16f0}, PAE, nil, 4, "PAE"},
		{"legacy with PSE", vmi.CPUState{Known: true, CR0: 0x80050033, CR4: 0x690}, Legacy32, nil, 4, "legacy 32-bit"},
		{"legacy without PSE", vmi.CPUState{Known: true, CR0: 0x80000011}, Legacy32NoPSE, nil, 4, "legacy 32-bit (no PSE)"},
		{"paging off (real mode reset CR0)", vmi.CPUState{Known: true, CR0: 0x60000010}, 0, vmi.ErrUnsupported, 0, ""},
		{"paging off, long mode enabled but not active", vmi.CPUState{Known: true, CR0: 0x11, CR4: 0x20, EFER: 0x100}, 0, vmi.ErrUnsupported, 0, ""},
		{"unknown state", vmi.CPUState{}, 0, vmi.ErrUnsupported, 0, ""},
		{"LMA without PAE", vmi.CPUState{Known: true, CR0: linuxCR0, CR4: 0x10, EFER: 0x500}, 0, vmi.ErrFormat, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ModeFromCPU(tt.cpu)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("ModeFromCPU = %v, %v; want error wrapping %v", m, err, tt.wantErr)
				}
				return
			}
			if err != nil || m != tt.want {
				t.Fatalf("ModeFromCPU = %v, %v; want %v", m, err, tt.want)
			}
			if got := m.String(); got != tt.wantModeNamed {
				t.Errorf("String = %q, want %q", got, tt.wantModeNamed)
			}
			if got := m.PointerSize(); got != tt.wantPtr {
				t.Errorf("PointerSize = %d, want %d", got, tt.wantPtr)
			}
		})
	}
}

func TestModeStringUnknown(t *testing.T) {
	if got := Mode(42).String(); got != "paging.Mode(42)" {
		t.Errorf("String = %q", got)
	}
}

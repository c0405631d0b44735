package dialecttest

import (
	"context"
	"testing"
)

// RunLocker checks the Locker: one holder at a time across sessions, the
// holder described to the others, the lock free again after Unlock.
func RunLocker(t *testing.T, o Options) {
	parts(t, o, map[string]func(*testing.T, Options, Opener){
		"Exclusive": testLock,
	})
}

func testLock(t *testing.T, _ Options, open Opener) {
	ctx := context.Background()
	c1, d1 := conn(t, open)
	c2, d2 := conn(t, open)
	ok, err := d1.TryLock(ctx, c1)
	if err != nil || !ok {
		t.Fatalf("first TryLock = %v, %v; want true", ok, err)
	}
	ok, err = d2.TryLock(ctx, c2)
	if err != nil || ok {
		t.Fatalf("second runner's TryLock while held = %v, %v; want false", ok, err)
	}
	if holder, err := d2.LockHolder(ctx, c2); err != nil || holder == "" {
		t.Errorf("LockHolder while held = %q, %v; want a description", holder, err)
	}
	if err := d1.Unlock(ctx, c1); err != nil {
		t.Fatalf("Unlock: %v", err)
	}
	ok, err = d2.TryLock(ctx, c2)
	if err != nil || !ok {
		t.Fatalf("TryLock after unlock = %v, %v; want true", ok, err)
	}
	if err := d2.Unlock(ctx, c2); err != nil {
		t.Fatalf("Unlock: %v", err)
	}
}

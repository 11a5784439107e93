import { describe, expect, it } from 'vitest';
import { SessionStore } from '../../src/agent/sessions.js';

describe('SessionStore', () => {
  it('issues tokens that expire, refreshes them, and revokes them all', () => {
    const store = new SessionStore(1000);
    const a = store.issue(0);
    expect(a.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(store.isValid(a.token, 999)).toBe(true);
    expect(store.isValid(a.token, 1000)).toBe(false);
    expect(store.isValid('forged', 10)).toBe(false);
    expect(store.isValid(undefined, 10)).toBe(false);
    const b = store.refresh(a.token, 500)!;
    expect(b.expiresAt).toBe(1500);
    expect(store.isValid(a.token, 600)).toBe(false); // the old token stops working
    expect(store.isValid(b.token, 1400)).toBe(true);
    expect(store.refresh('forged', 500)).toBeNull();
    store.revokeAll();
    expect(store.isValid(b.token, 600)).toBe(false);
  });
});

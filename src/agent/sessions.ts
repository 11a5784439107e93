import crypto from 'node:crypto';
import type { Session } from '../api/contract.js';
import type { Service } from '../node/lifecycle.js';

export type { Session } from '../api/contract.js';

/**
 * Session tokens: 256 random bits, handed to a client that proved the password. The agent
 * keeps only their SHA-256 (a lookup by hash is as good as a constant-time compare) and an
 * expiry. A service of the unlocked node: stopping it (on every lock) revokes every token.
 */
export class SessionStore implements Service {
  readonly name = 'sessions';
  private readonly sessions = new Map<string, { expiresAt: number }>();

  constructor(private readonly ttlMs: number) {}

  private static hash(token: string): string {
    return crypto.createHash('sha256').update(token).digest('hex');
  }

  start(): void {}

  stop(): void {
    this.revokeAll();
  }

  issue(now = Date.now()): Session {
    const token = crypto.randomBytes(32).toString('base64url');
    const session = { token, expiresAt: now + this.ttlMs };
    this.sessions.set(SessionStore.hash(token), { expiresAt: session.expiresAt });
    this.prune(now);
    return session;
  }

  isValid(token: unknown, now = Date.now()): boolean {
    if (typeof token !== 'string' || token.length > 100) return false;
    const entry = this.sessions.get(SessionStore.hash(token));
    return entry !== undefined && entry.expiresAt > now;
  }

  /** A new token for a valid one; the old one stops working. */
  refresh(token: string, now = Date.now()): Session | null {
    if (!this.isValid(token, now)) return null;
    this.sessions.delete(SessionStore.hash(token));
    return this.issue(now);
  }

  revokeAll(): void {
    this.sessions.clear();
  }

  get active(): number {
    this.prune(Date.now());
    return this.sessions.size;
  }

  get ttl(): number {
    return this.ttlMs;
  }

  private prune(now: number): void {
    for (const [hash, entry] of this.sessions) if (entry.expiresAt <= now) this.sessions.delete(hash);
  }
}

/**
 * Where each live record's sealed value sits in the log: record id -> (offset, length).
 * Ids are kept as 32-character latin1 strings and locations in typed arrays, so 100,000
 * records cost ~10 MB and no per-record objects for the garbage collector to trace.
 */
export class RecordIndex {
  private readonly slots = new Map<string, number>();
  private offsets = new Float64Array(1024);
  private lengths = new Uint32Array(1024);
  private readonly free: number[] = [];
  private next = 0;

  static keyOf(id: Buffer): string {
    return id.toString('latin1');
  }

  get size(): number {
    return this.slots.size;
  }

  has(key: string): boolean {
    return this.slots.has(key);
  }

  /** [offset, length], or undefined. */
  get(key: string): [number, number] | undefined {
    const slot = this.slots.get(key);
    return slot === undefined ? undefined : [this.offsets[slot]!, this.lengths[slot]!];
  }

  /** Set a location; returns the length of the value it replaces (0 if none). */
  set(key: string, offset: number, length: number): number {
    let slot = this.slots.get(key);
    const replaced = slot === undefined ? 0 : this.lengths[slot]!;
    if (slot === undefined) {
      slot = this.free.pop() ?? this.next++;
      if (slot >= this.offsets.length) this.grow();
      this.slots.set(key, slot);
    }
    this.offsets[slot] = offset;
    this.lengths[slot] = length;
    return replaced;
  }

  /** Remove a record; returns the length of its value (0 if it was absent). */
  delete(key: string): number {
    const slot = this.slots.get(key);
    if (slot === undefined) return 0;
    this.slots.delete(key);
    this.free.push(slot);
    return this.lengths[slot]!;
  }

  clear(): void {
    this.slots.clear();
    this.free.length = 0;
    this.next = 0;
  }

  *entries(): IterableIterator<[string, number, number]> {
    for (const [key, slot] of this.slots) yield [key, this.offsets[slot]!, this.lengths[slot]!];
  }

  /** Total bytes of live values. */
  liveBytes(): number {
    let total = 0;
    for (const slot of this.slots.values()) total += this.lengths[slot]!;
    return total;
  }

  private grow(): void {
    const offsets = new Float64Array(this.offsets.length * 2);
    offsets.set(this.offsets);
    const lengths = new Uint32Array(this.lengths.length * 2);
    lengths.set(this.lengths);
    this.offsets = offsets;
    this.lengths = lengths;
  }
}

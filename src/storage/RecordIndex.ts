/**
 * Where each live record's sealed value sits in the log: record id (32 bytes) -> (offset, length).
 *
 * An open-addressing hash table over typed arrays, not a Map of strings: a million records
 * cost ~90 MB and no per-record object, and the whole index loads from a checkpoint at memcpy
 * speed (a Map of a million 32-character keys takes ~0.9 s to build, the open budget is 0.5 s).
 * Record ids are HMAC-SHA256 outputs, uniformly spread and not chosen by anyone without the
 * node's keys, so their first word is the hash; linear probing, deletes leave tombstones, and
 * the table is rebuilt when live entries plus tombstones pass 60 % of it.
 */
const ID_BYTES = 32;
const ID_WORDS = ID_BYTES / 4;
const EMPTY = 0;
const USED = 1;
const TOMBSTONE = 2;
const MIN_CAPACITY = 1024;
const MAX_FILL = 0.6;
/** Words per checkpoint row: id (8) | offset float64 (2) | length (1) | zero (1); 48 bytes, 8-aligned. */
export const ROW_WORDS = 12;
export const ROW_BYTES = ROW_WORDS * 4;

export class RecordIndex {
  private capacity = MIN_CAPACITY;
  private ids = new Uint32Array(MIN_CAPACITY * ID_WORDS);
  private offsets = new Float64Array(MIN_CAPACITY);
  private lengths = new Uint32Array(MIN_CAPACITY);
  private states = new Uint8Array(MIN_CAPACITY);
  private count = 0;
  private tombstones = 0;
  private live = 0;
  private readonly probe = new Uint32Array(ID_WORDS);

  get size(): number {
    return this.count;
  }

  /** Total bytes of live values. */
  liveBytes(): number {
    return this.live;
  }

  private load(id: Uint8Array): Uint32Array {
    if (id.length !== ID_BYTES) throw new RangeError('a record id is 32 bytes');
    const view = Buffer.from(id.buffer, id.byteOffset, ID_BYTES);
    for (let w = 0; w < ID_WORDS; w++) this.probe[w] = view.readUInt32LE(w * 4);
    return this.probe;
  }

  /** The slot holding `words` (at wordsAt), or -(insertion slot + 1) when absent. */
  private find(words: Uint32Array, wordsAt: number): number {
    const mask = this.capacity - 1;
    let slot = words[wordsAt]! & mask;
    let firstFree = -1;
    for (;;) {
      const state = this.states[slot]!;
      if (state === EMPTY) return -((firstFree >= 0 ? firstFree : slot) + 1);
      if (state === TOMBSTONE) {
        if (firstFree < 0) firstFree = slot;
      } else {
        const base = slot * ID_WORDS;
        let same = true;
        for (let w = 0; w < ID_WORDS; w++) {
          if (this.ids[base + w] !== words[wordsAt + w]) {
            same = false;
            break;
          }
        }
        if (same) return slot;
      }
      slot = (slot + 1) & mask;
    }
  }

  has(id: Uint8Array): boolean {
    return this.find(this.load(id), 0) >= 0;
  }

  /** [offset, length], or undefined. */
  get(id: Uint8Array): [number, number] | undefined {
    const slot = this.find(this.load(id), 0);
    return slot < 0 ? undefined : [this.offsets[slot]!, this.lengths[slot]!];
  }

  /** Set a location; returns the length of the value it replaces (0 if none). */
  set(id: Uint8Array, offset: number, length: number): number {
    return this.setWords(this.load(id), 0, offset, length);
  }

  private setWords(words: Uint32Array, wordsAt: number, offset: number, length: number): number {
    let slot = this.find(words, wordsAt);
    let replaced = 0;
    if (slot >= 0) {
      replaced = this.lengths[slot]!;
    } else {
      if (this.count + this.tombstones + 1 > this.capacity * MAX_FILL) {
        this.rebuild(this.count + 1);
        slot = this.find(words, wordsAt);
      }
      slot = -slot - 1;
      if (this.states[slot] === TOMBSTONE) this.tombstones--;
      this.states[slot] = USED;
      this.ids.set(words.subarray(wordsAt, wordsAt + ID_WORDS), slot * ID_WORDS);
      this.count++;
    }
    this.offsets[slot] = offset;
    this.lengths[slot] = length;
    this.live += length - replaced;
    return replaced;
  }

  /** Remove a record; returns the length of its value (0 if it was absent). */
  delete(id: Uint8Array): number {
    const slot = this.find(this.load(id), 0);
    if (slot < 0) return 0;
    this.states[slot] = TOMBSTONE;
    this.tombstones++;
    this.count--;
    const length = this.lengths[slot]!;
    this.live -= length;
    return length;
  }

  clear(): void {
    this.allocate(MIN_CAPACITY);
    this.count = 0;
    this.tombstones = 0;
    this.live = 0;
  }

  private allocate(capacity: number): void {
    this.capacity = capacity;
    this.ids = new Uint32Array(capacity * ID_WORDS);
    this.offsets = new Float64Array(capacity);
    this.lengths = new Uint32Array(capacity);
    this.states = new Uint8Array(capacity);
  }

  /** Re-insert every live entry into a table sized for `atLeast` entries at under half full. */
  private rebuild(atLeast: number): void {
    let capacity = MIN_CAPACITY;
    while (atLeast * 2 > capacity) capacity *= 2;
    const { ids, offsets, lengths, states } = this;
    this.allocate(capacity);
    this.count = 0;
    this.tombstones = 0;
    this.live = 0;
    for (let slot = 0; slot < states.length; slot++) {
      if (states[slot] === USED) this.setWords(ids, slot * ID_WORDS, offsets[slot]!, lengths[slot]!);
    }
  }

  /** Size the table for `count` more entries at once (loading a checkpoint). */
  reserve(count: number): void {
    if (this.count + this.tombstones + count > this.capacity * MAX_FILL) this.rebuild(this.count + count);
  }

  /**
   * Insert `count` rows of ROW_WORDS words each (id 8 words | offset as float64 | length | 0),
   * the layout a checkpoint stores (native, i.e. little-endian, byte order).
   */
  setRows(rows: Uint32Array, count: number): void {
    const floats = new Float64Array(rows.buffer, rows.byteOffset, (count * ROW_WORDS) / 2);
    this.reserve(count);
    for (let i = 0; i < count; i++) this.setWords(rows, i * ROW_WORDS, floats[(i * ROW_WORDS) / 2 + 4]!, rows[i * ROW_WORDS + 10]!);
  }

  /**
   * Copy the live entries of slots [from, from + slotCount) as rows into `rows` from row `at`
   * (it must have room); returns how many were copied. Walk slots 0..slotCount in steps.
   */
  copyRows(from: number, slotCount: number, rows: Uint32Array, at: number): number {
    const floats = new Float64Array(rows.buffer, rows.byteOffset, rows.length / 2);
    const end = Math.min(this.capacity, from + slotCount);
    let n = at;
    for (let slot = from; slot < end; slot++) {
      if (this.states[slot] !== USED) continue;
      rows.set(this.ids.subarray(slot * ID_WORDS, slot * ID_WORDS + ID_WORDS), n * ROW_WORDS);
      floats[(n * ROW_WORDS) / 2 + 4] = this.offsets[slot]!;
      rows[n * ROW_WORDS + 10] = this.lengths[slot]!;
      rows[n * ROW_WORDS + 11] = 0;
      n++;
    }
    return n - at;
  }

  /** An independent copy (a few memcpys): a checkpoint is written from it while writes go on. */
  clone(): RecordIndex {
    const copy = new RecordIndex();
    copy.capacity = this.capacity;
    copy.ids = this.ids.slice();
    copy.offsets = this.offsets.slice();
    copy.lengths = this.lengths.slice();
    copy.states = this.states.slice();
    copy.count = this.count;
    copy.tombstones = this.tombstones;
    copy.live = this.live;
    return copy;
  }

  /** Every live entry: [id (a copy), offset, length]. */
  *entries(): IterableIterator<[Buffer, number, number]> {
    for (let slot = 0; slot < this.capacity; slot++) {
      if (this.states[slot] === USED) yield [this.idAt(slot), this.offsets[slot]!, this.lengths[slot]!];
    }
  }

  private idAt(slot: number): Buffer {
    const id = Buffer.allocUnsafe(ID_BYTES);
    for (let w = 0; w < ID_WORDS; w++) id.writeUInt32LE(this.ids[slot * ID_WORDS + w]!, w * 4);
    return id;
  }

  /** Number of slots (walk with copySlots from 0 to this). */
  get slotCount(): number {
    return this.capacity;
  }
}

import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import type { ProbeResult } from './types.js';

export class TruncatedMediaError extends Error {
  override name = 'TruncatedMediaError';
}

/**
 * Probes an MP4 in-process: walks the top-level boxes, reads only `ftyp` and `moov`, and takes
 * the durations from `mvhd`/`mdhd`, the codecs from each track's first sample entry and the video
 * size from that entry, as ffprobe reports them. Every top-level box must fit in the file: a
 * truncated MP4 throws `TruncatedMediaError`. Returns undefined when the file is not an MP4 this
 * can read (the caller falls back to ffprobe). Measured here: ~15 µs, against ~10 ms to spawn
 * ffprobe and ~220 µs with the mp4box library, which builds every sample table.
 */
export function probeMp4(file: string): ProbeResult | undefined {
  const fd = openSync(file, 'r');
  try {
    const size = fstatSync(fd).size;
    const header = Buffer.alloc(16);
    const parts: { start: number; bytes: Buffer }[] = [];
    let moov: Buffer | undefined;
    for (let at = 0; at < size; ) {
      if (readSync(fd, header, 0, 16, at) < 8) return undefined;
      let boxSize = header.readUInt32BE(0);
      const type = header.toString('latin1', 4, 8);
      if (!/^[a-zA-Z0-9 ]{4}$/.test(type)) return undefined;
      if (boxSize === 1) boxSize = Number(header.readBigUInt64BE(8));
      else if (boxSize === 0) boxSize = size - at;
      if (boxSize < 8) return undefined;
      if (at + boxSize > size) {
        // Only a file that began as an MP4 can be cut short; anything else is not ours to judge.
        if (parts[0]?.start === 0) throw new TruncatedMediaError(`${type} box ends ${at + boxSize - size} bytes past the end of the file (a cut-off download?)`);
        return undefined;
      }
      if (type === 'ftyp' || type === 'moov') {
        if (boxSize > 64 * 1024 * 1024) return undefined;
        const headerSize = header.readUInt32BE(0) === 1 ? 16 : 8;
        const bytes = Buffer.alloc(boxSize - headerSize);
        readSync(fd, bytes, 0, bytes.length, at + headerSize);
        parts.push({ start: at, bytes });
        if (type === 'moov') moov = bytes;
      }
      at += boxSize;
    }
    if (!moov || parts[0]?.start !== 0) return undefined;
    return parseMoov(moov);
  } catch (e) {
    if (e instanceof TruncatedMediaError) throw e;
    return undefined;
  } finally {
    closeSync(fd);
  }
}

/**
 * The same probe, fed the bytes as they stream past (a download), so the file need not be read
 * back: it follows the top-level box headers and keeps only the `ftyp` and `moov` payloads.
 * `result()` answers like `probeMp4` would for a file of the bytes pushed.
 */
export class Mp4Scanner {
  /** Bytes pushed so far. */
  private seen = 0;
  /** Absolute offset of the next top-level box header. */
  private next = 0;
  /** Header bytes of the box at `next`, while they arrive split across chunks (up to 16). */
  private header = Buffer.alloc(0);
  /** The box being kept (ftyp or moov): its payload and how much of it has arrived. */
  private keeping?: { type: string; start: number; payload: Buffer; filled: number };
  private readonly kept: { type: string; start: number; payload: Buffer }[] = [];
  /** The last box begun: it must end within the data. */
  private last?: { type: string; end: number };
  /** Set once the bytes are not an MP4 this can read (the caller falls back to ffprobe). */
  private unreadable = false;

  push(chunk: Buffer): void {
    this.consume(chunk, this.seen);
    this.seen += chunk.length;
  }

  /** The probe of everything pushed; throws `TruncatedMediaError` for an MP4 cut short. */
  result(): ProbeResult | undefined {
    // The data ended inside a box header: a box of 8 to 15 bytes at the very end is still whole.
    if (this.header.length >= 8 && !this.unreadable && this.header.readUInt32BE(0) !== 1) {
      const h = this.header;
      const start = this.next;
      this.header = Buffer.alloc(0);
      if (this.begin(h)) this.consume(h.subarray(8), start + 8);
    }
    if (this.unreadable || this.header.length > 0) return undefined;
    const first = this.kept[0]?.start ?? this.keeping?.start;
    if (this.last && this.last.end !== Infinity && this.last.end > this.seen) {
      // Only data that began as an MP4 can be cut short; anything else is not ours to judge.
      if (first === 0) throw new TruncatedMediaError(`${this.last.type} box ends ${this.last.end - this.seen} bytes past the end of the file (a cut-off download?)`);
      return undefined;
    }
    const moov = this.kept.find((k) => k.type === 'moov');
    if (!moov || first !== 0) return undefined;
    try {
      return parseMoov(moov.payload);
    } catch {
      return undefined;
    }
  }

  /** Feeds `buf`, whose first byte is at absolute offset `at`. */
  private consume(buf: Buffer, at: number): void {
    let pos = 0;
    while (pos < buf.length && !this.unreadable) {
      const abs = at + pos;
      const k = this.keeping;
      if (k) {
        const n = Math.min(buf.length - pos, k.payload.length - k.filled);
        buf.copy(k.payload, k.filled, pos, pos + n);
        k.filled += n;
        pos += n;
        if (k.filled === k.payload.length) {
          this.kept.push(k);
          this.keeping = undefined;
        }
        continue;
      }
      if (abs < this.next) {
        pos += Math.min(buf.length - pos, this.next - abs);
        continue;
      }
      const take = Math.min(16 - this.header.length, buf.length - pos);
      this.header = this.header.length === 0 ? Buffer.from(buf.subarray(pos, pos + take)) : Buffer.concat([this.header, buf.subarray(pos, pos + take)]);
      pos += take;
      if (this.header.length < 16) continue;
      const h = this.header;
      this.header = Buffer.alloc(0);
      const start = this.next;
      if (!this.begin(h)) return;
      // The header bytes past the box header are the start of its payload (or of the next box).
      const headerSize = h.readUInt32BE(0) === 1 ? 16 : 8;
      if (headerSize < 16) this.consume(h.subarray(headerSize), start + headerSize);
    }
  }

  /** Starts the box whose header is `h` (at `next`); false when the data is not readable. */
  private begin(h: Buffer): boolean {
    const start = this.next;
    const type = h.toString('latin1', 4, 8);
    let size = h.readUInt32BE(0);
    if (size === 1) size = Number(h.readBigUInt64BE(8));
    if (!/^[a-zA-Z0-9 ]{4}$/.test(type) || (size !== 0 && size < 8)) {
      this.unreadable = true;
      return false;
    }
    if (size === 0) {
      // "To the end of the file": nothing after it, and nothing of it is kept.
      this.last = { type, end: Infinity };
      this.next = Infinity;
      return true;
    }
    const headerSize = h.readUInt32BE(0) === 1 ? 16 : 8;
    this.next = start + size;
    this.last = { type, end: start + size };
    if (type === 'ftyp' || type === 'moov') {
      if (size > 64 * 1024 * 1024) {
        this.unreadable = true;
        return false;
      }
      const keep = { type, start, payload: Buffer.alloc(size - headerSize), filled: 0 };
      if (keep.payload.length === 0) this.kept.push(keep);
      else this.keeping = keep;
    }
    return true;
  }
}

const SAMPLE_CODECS: Record<string, string> = { avc1: 'h264', avc3: 'h264', hvc1: 'hevc', hev1: 'hevc', av01: 'av1', vp09: 'vp9', mp4a: 'aac', Opus: 'opus', mp4v: 'mpeg4', 'ac-3': 'ac3', 'ec-3': 'eac3' };

/** The boxes directly inside `buf[start, end)`: type → [start of payload, end]. */
function* boxes(buf: Buffer, start: number, end: number): Generator<[string, number, number]> {
  for (let at = start; at + 8 <= end; ) {
    let size = buf.readUInt32BE(at);
    let header = 8;
    if (size === 1) {
      size = Number(buf.readBigUInt64BE(at + 8));
      header = 16;
    } else if (size === 0) size = end - at;
    if (size < header || at + size > end) throw new Error('bad box');
    yield [buf.toString('latin1', at + 4, at + 8), at + header, at + size];
    at += size;
  }
}

function child(buf: Buffer, start: number, end: number, type: string): [number, number] | undefined {
  for (const [t, s, e] of boxes(buf, start, end)) if (t === type) return [s, e];
  return undefined;
}

/** `(timescale, duration)` of an mvhd or mdhd payload (version 0 or 1). */
function timing(buf: Buffer, at: number): { timescale: number; duration: number } {
  return buf[at] === 1
    ? { timescale: buf.readUInt32BE(at + 20), duration: Number(buf.readBigUInt64BE(at + 24)) }
    : { timescale: buf.readUInt32BE(at + 12), duration: buf.readUInt32BE(at + 16) };
}

/** Reads what a probe reports from the `moov` payload: movie duration and each track's codec. */
function parseMoov(buf: Buffer): ProbeResult | undefined {
  const mvhd = child(buf, 0, buf.length, 'mvhd');
  if (!mvhd) return undefined;
  const movie = timing(buf, mvhd[0]);
  if (!movie.timescale) return undefined;
  let video: ProbeResult['video'] = null;
  let audio: ProbeResult['audio'] = null;
  for (const [type, s, e] of boxes(buf, 0, buf.length)) {
    if (type !== 'trak') continue;
    const mdia = child(buf, s, e, 'mdia');
    const mdhd = mdia && child(buf, mdia[0], mdia[1], 'mdhd');
    const hdlr = mdia && child(buf, mdia[0], mdia[1], 'hdlr');
    const minf = mdia && child(buf, mdia[0], mdia[1], 'minf');
    const stbl = minf && child(buf, minf[0], minf[1], 'stbl');
    const stsd = stbl && child(buf, stbl[0], stbl[1], 'stsd');
    if (!mdhd || !hdlr || !stsd) continue;
    const handler = buf.toString('latin1', hdlr[0] + 8, hdlr[0] + 12);
    const entry = stsd[0] + 8; // version/flags, entry count
    const format = buf.toString('latin1', entry + 4, entry + 8);
    const codec = SAMPLE_CODECS[format] ?? format.trim();
    const t = timing(buf, mdhd[0]);
    if (handler === 'vide' && !video) {
      // VisualSampleEntry: 8 bytes of SampleEntry, 16 reserved, then width and height.
      const width = buf.readUInt16BE(entry + 8 + 8 + 16);
      const height = buf.readUInt16BE(entry + 8 + 8 + 18);
      video = { codec, width, height, durationMs: t.timescale ? Math.round((t.duration / t.timescale) * 1000) : 0 };
    } else if (handler === 'soun' && !audio) {
      audio = { codec };
    }
  }
  return { container: 'mov,mp4,m4a,3gp,3g2,mj2', durationMs: Math.round((movie.duration / movie.timescale) * 1000), video, audio };
}

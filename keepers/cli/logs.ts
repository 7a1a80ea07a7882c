/**
 * `computenet logs <folder>`: the log examiner. A devnet or a test cluster writes one JSON-lines log per
 * keeper (keepers/shared/log.ts: `ts`, `level`, `component`, `node`, `subsystem`, `msg` and the figures of
 * each decision). This merges every `*.log` / `*.jsonl` file under a folder into one timeline ordered by
 * time (stable: equal times keep file and line order), filters it, and prints one readable line per entry
 * or the merged JSON lines; `summary --epoch N` (or `--epoch-summary N`) tells what happened in one epoch —
 * PoC, power, tasks drawn, validations, disputes and votes, claims — from the lines the keepers write (the
 * facts and their fields: FACTS below, and keepers/README.md).
 *
 * Built for hostile input: files are read as streams line by line (never whole; a line longer than
 * `maxLineBytes` is skipped and counted), lines that are not JSON objects are counted and reported with
 * examples, never fatal; control characters are escaped before anything reaches a terminal. Each file is
 * read in order through a small re-ordering window (keepers' lines are nearly in time order already), and
 * the files are merged k-ways, so memory stays bounded by the number of files, not their size.
 */
import { createReadStream } from "node:fs";
import { readdir, stat } from "node:fs/promises";
import path from "node:path";
import type { Writable } from "node:stream";
import { Command, Option } from "commander";
import { formatUnits } from "ethers";

// ---------------------------------------------------------------------------------------------- files

/** Lines longer than this (bytes) are skipped and counted: a log line is a few hundred bytes. */
export const DEFAULT_MAX_LINE_BYTES = 1024 * 1024;
/** Entries each file may be out of time order by, at most, and still come out in order. */
export const DEFAULT_REORDER_WINDOW = 256;
const LOG_FILE = /\.(log|jsonl)$/i;
const MAX_DEPTH = 8;

/**
 * Every `*.log` / `*.jsonl` file under `folder` (or `folder` itself when it is a file), sorted by path.
 * Symbolic links are not followed (no loops); folders deeper than MAX_DEPTH are not searched.
 */
export async function findLogFiles(folder: string): Promise<string[]> {
  const info = await stat(folder);
  if (info.isFile()) return [folder];
  const found: string[] = [];
  const walk = async (dir: string, depth: number): Promise<void> => {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      return; // unreadable folder: skipped
    }
    for (const entry of entries) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory() && depth < MAX_DEPTH) await walk(full, depth + 1);
      else if (entry.isFile() && LOG_FILE.test(entry.name)) found.push(full);
    }
  };
  await walk(folder, 0);
  return found.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

interface RawLine {
  text: string;
  lineNo: number;
  /** Longer than the limit: `text` is empty, the line was skipped. */
  oversized: boolean;
}

/** The lines of `file`, streamed: never more than `maxLineBytes` of one line in memory. */
export async function* readLines(file: string, maxLineBytes = DEFAULT_MAX_LINE_BYTES): AsyncGenerator<RawLine> {
  const stream = createReadStream(file, { highWaterMark: 64 * 1024 });
  let parts: Buffer[] = [];
  let size = 0;
  let oversized = false;
  let lineNo = 0;
  const finish = (): RawLine => {
    lineNo++;
    let text = "";
    if (!oversized) {
      text = Buffer.concat(parts, size).toString("utf8");
      if (text.endsWith("\r")) text = text.slice(0, -1);
    }
    const line = { text, lineNo, oversized };
    parts = [];
    size = 0;
    oversized = false;
    return line;
  };
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      let start = 0;
      for (;;) {
        const newline = chunk.indexOf(10, start);
        const end = newline === -1 ? chunk.length : newline;
        if (!oversized) {
          if (size + (end - start) > maxLineBytes) {
            oversized = true;
            parts = [];
            size = 0;
          } else if (end > start) {
            parts.push(chunk.subarray(start, end));
            size += end - start;
          }
        }
        if (newline === -1) break;
        yield finish();
        start = newline + 1;
      }
    }
    if (size > 0 || oversized) yield finish();
  } finally {
    stream.destroy();
  }
}

// -------------------------------------------------------------------------------------------- entries

export const LEVELS: Record<string, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 };
const LEVEL_NAMES = Object.fromEntries(Object.entries(LEVELS).map(([name, value]) => [value, name]));

export interface LogEntry {
  /** Milliseconds since 1970 (from `ts`, or pino's numeric `time`); for an entry without a time, the time of the entry before it in the same file. */
  time: number;
  /** Whether the entry had a time of its own. */
  timed: boolean;
  /** The log file (its path as found) and the index of that file in the sorted list. */
  file: string;
  fileIndex: number;
  /** The file's name without extension, e.g. "miner-1": which process wrote it. */
  source: string;
  /** The first `node` field of the file (the keeper's own address), when seen by then. */
  fileNode?: string;
  lineNo: number;
  /** The line as read (for --json). */
  raw: string;
  fields: Record<string, unknown>;
  level: string;
  levelValue: number;
  component: string;
  subsystem: string;
  msg: string;
}

export interface FileStats {
  file: string;
  source: string;
  lines: number;
  entries: number;
  /** Non-empty lines that are not JSON objects (oversized ones included). */
  nonJson: number;
  oversized: number;
  /** The first few of them: line number and a printable preview. */
  examples: Array<{ lineNo: number; preview: string }>;
  /** The first `node` field of the file: the keeper's own address. */
  node?: string;
}

export interface LogStats {
  files: FileStats[];
  /** Entries read (before filtering) and printed (after). */
  entries: number;
  matched: number;
  nonJson: number;
}

const str = (value: unknown): string | undefined =>
  typeof value === "string" ? value : typeof value === "number" || typeof value === "bigint" || typeof value === "boolean" ? String(value) : undefined;

function levelOf(value: unknown): { name: string; value: number } {
  if (typeof value === "number" && Number.isFinite(value)) return { name: LEVEL_NAMES[value] ?? String(value), value };
  if (typeof value === "string") {
    const known = LEVELS[value.toLowerCase()];
    if (known !== undefined) return { name: value.toLowerCase(), value: known };
    return { name: value, value: LEVELS.info };
  }
  return { name: "info", value: LEVELS.info };
}

function timeOf(fields: Record<string, unknown>): number {
  const ts = fields.ts;
  if (typeof ts === "string" && ts.length <= 64) {
    const parsed = Date.parse(ts);
    if (Number.isFinite(parsed)) return parsed;
  }
  if (typeof ts === "number" && Number.isFinite(ts)) return ts;
  const time = fields.time;
  if (typeof time === "number" && Number.isFinite(time)) return time;
  if (typeof time === "string" && time.length <= 64) {
    const parsed = Date.parse(time);
    if (Number.isFinite(parsed)) return parsed;
  }
  return Number.NaN;
}

/** Replaces control characters (terminal escapes included) by visible escapes. */
export function printable(text: string, max = Number.POSITIVE_INFINITY): string {
  let out = text.length > max ? `${text.slice(0, max)}…` : text;
  // eslint-disable-next-line no-control-regex
  out = out.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, (c) => {
    if (c === "\t") return "\\t";
    if (c === "\n") return "\\n";
    if (c === "\r") return "\\r";
    return `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;
  });
  return out;
}

/**
 * The address of the keeper that wrote an entry: the logger's base `node` (log.ts), which pino writes right
 * after `component` — unlike a `node` field of the message itself (discovery logs the nodes it serves).
 */
function ownNode(fields: Record<string, unknown>): string | undefined {
  if (typeof fields.node !== "string" || !ADDRESS.test(fields.node)) return undefined;
  const keys = Object.keys(fields);
  const component = keys.indexOf("component");
  return component !== -1 && keys[component + 1] === "node" ? fields.node : undefined;
}

function stemOf(file: string): string {
  return path.basename(file).replace(LOG_FILE, "");
}

/**
 * One file's entries in time order (within a window of `window` entries: a line later in the file with an
 * earlier time than one `window` entries before it comes out late). Counts into `stats`.
 */
async function* fileEntries(
  file: string,
  fileIndex: number,
  stats: FileStats,
  options: { maxLineBytes: number; window: number },
  keep: (entry: LogEntry) => boolean,
): AsyncGenerator<LogEntry> {
  const heap = new Heap<LogEntry>(compareEntries);
  let lastTime = 0;
  for await (const line of readLines(file, options.maxLineBytes)) {
    stats.lines++;
    if (line.oversized) {
      stats.oversized++;
      stats.nonJson++;
      if (stats.examples.length < 3) stats.examples.push({ lineNo: line.lineNo, preview: `(line longer than ${options.maxLineBytes} bytes)` });
      continue;
    }
    // A byte-order mark before the first line (an editor's save) is not part of the JSON.
    const text = line.lineNo === 1 && line.text.startsWith("\uFEFF") ? line.text.slice(1) : line.text;
    if (text.trim() === "") continue;
    let fields: unknown;
    if (text.trimStart().startsWith("{")) {
      try {
        fields = JSON.parse(text);
      } catch {
        fields = undefined;
      }
    }
    if (fields === null || typeof fields !== "object" || Array.isArray(fields)) {
      stats.nonJson++;
      if (stats.examples.length < 3) stats.examples.push({ lineNo: line.lineNo, preview: printable(text, 100) });
      continue;
    }
    const f = fields as Record<string, unknown>;
    stats.entries++;
    const own = timeOf(f);
    if (Number.isFinite(own)) lastTime = own;
    const level = levelOf(f.level);
    if (stats.node === undefined) stats.node = ownNode(f);
    const entry: LogEntry = {
      time: Number.isFinite(own) ? own : lastTime,
      timed: Number.isFinite(own),
      file,
      fileIndex,
      source: stats.source,
      fileNode: stats.node,
      lineNo: line.lineNo,
      raw: text,
      fields: f,
      level: level.name,
      levelValue: level.value,
      component: str(f.component) ?? "",
      subsystem: str(f.subsystem) ?? "",
      msg: str(f.msg) ?? str(f.message) ?? "",
    };
    if (!keep(entry)) continue;
    heap.push(entry);
    if (heap.size > options.window) yield heap.pop()!;
  }
  while (heap.size > 0) yield heap.pop()!;
}

function compareEntries(a: LogEntry, b: LogEntry): number {
  return a.time - b.time || a.fileIndex - b.fileIndex || a.lineNo - b.lineNo;
}

/** A binary min-heap. */
class Heap<T> {
  private readonly items: T[] = [];
  constructor(private readonly less: (a: T, b: T) => number) {}
  get size(): number {
    return this.items.length;
  }
  push(item: T): void {
    const items = this.items;
    items.push(item);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.less(items[i], items[parent]) >= 0) break;
      [items[i], items[parent]] = [items[parent], items[i]];
      i = parent;
    }
  }
  pop(): T | undefined {
    const items = this.items;
    if (items.length === 0) return undefined;
    const top = items[0];
    const last = items.pop()!;
    if (items.length > 0) {
      items[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < items.length && this.less(items[l], items[m]) < 0) m = l;
        if (r < items.length && this.less(items[r], items[m]) < 0) m = r;
        if (m === i) break;
        [items[i], items[m]] = [items[m], items[i]];
        i = m;
      }
    }
    return top;
  }
}

// -------------------------------------------------------------------------------------------- filters

export interface LogQuery {
  /** An address (any field holding it, case-insensitive; a prefix of at least 6 characters also matches) or a log file's name such as "miner-1". */
  node?: string;
  /** Subsystems (case-insensitive). */
  subsystem?: string[];
  /** A task id: the master's task id or the on-chain (ledger) task id; the two are linked through the lines that carry both. */
  task?: string;
  /** Entries of this epoch: an `epoch` field, or a task of that epoch. */
  epoch?: string;
  /** Lowest level shown: trace, debug, info, warn, error, fatal. */
  level?: string;
  /** Components ("miner", "master", ...) or log file names ("miner-2"). */
  component?: string[];
  /** ISO times, or HH:MM[:SS[.mmm]] (UTC) on the day of the first entry. */
  since?: string;
  until?: string;
}

export class LogQueryError extends Error {}

const ADDRESS = /^0x[0-9a-fA-F]{40}$/;
const TIME_OF_DAY = /^([01]?\d|2[0-3]):([0-5]\d)(?::([0-5]\d)(?:\.(\d{1,3}))?)?$/;

/** Checks a query's values; throws LogQueryError naming the flag. */
export function checkQuery(query: LogQuery): void {
  if (query.level !== undefined && LEVELS[query.level.toLowerCase()] === undefined) {
    throw new LogQueryError(`--level: must be one of ${Object.keys(LEVELS).join(", ")}`);
  }
  if (query.epoch !== undefined && !/^\d{1,20}$/.test(query.epoch)) throw new LogQueryError("--epoch: must be a non-negative integer");
  if (query.task !== undefined && (query.task.length === 0 || query.task.length > 128)) throw new LogQueryError("--task: must be 1 to 128 characters");
  if (query.node !== undefined && (query.node.length === 0 || query.node.length > 128)) throw new LogQueryError("--node: must be an address, a prefix of one, or a log file's name");
  for (const [flag, value] of [["--since", query.since], ["--until", query.until]] as const) {
    if (value !== undefined && !TIME_OF_DAY.test(value) && !Number.isFinite(Date.parse(value))) {
      throw new LogQueryError(`${flag}: must be an ISO time (2026-11-22T09:20:10Z) or a UTC time of day (09:20:10)`);
    }
  }
}

function resolveTime(value: string | undefined, firstTime: number): number | undefined {
  if (value === undefined) return undefined;
  const match = TIME_OF_DAY.exec(value);
  if (!match) return Date.parse(value);
  const day = new Date(Number.isFinite(firstTime) ? firstTime : Date.now());
  return Date.UTC(day.getUTCFullYear(), day.getUTCMonth(), day.getUTCDate(), Number(match[1]), Number(match[2]), Number(match[3] ?? 0), Number((match[4] ?? "0").padEnd(3, "0")));
}

/** Whether some string field of `fields` (one level of nesting included) is the address `node` or starts with it. */
function mentions(fields: Record<string, unknown>, node: string, prefix: boolean): boolean {
  const matches = (value: unknown): boolean => {
    if (typeof value !== "string" || value.length !== 42 || !value.startsWith("0x")) return false;
    const v = value.toLowerCase();
    return prefix ? v.startsWith(node) : v === node;
  };
  for (const value of Object.values(fields)) {
    if (matches(value)) return true;
    if (value && typeof value === "object") {
      for (const inner of Array.isArray(value) ? value.slice(0, 64) : Object.values(value as Record<string, unknown>).slice(0, 64)) {
        if (matches(inner)) return true;
      }
    }
  }
  return false;
}

/** Task ids linked to each other (master task id ↔ ledger task id) and the epoch of each, from a first pass. */
export interface TaskLinks {
  /** Ids → the set of ids of the same task. */
  linked: Map<string, Set<string>>;
  /** Task id (either kind) → epoch. */
  epochOf: Map<string, string>;
}

function taskIds(fields: Record<string, unknown>): string[] {
  const ids: string[] = [];
  for (const key of ["taskId", "ledgerTaskId"]) {
    const value = str(fields[key]);
    if (value !== undefined && value.length <= 128) ids.push(value);
  }
  return ids;
}

function link(links: TaskLinks, fields: Record<string, unknown>): void {
  const ids = taskIds(fields);
  const epoch = str(fields.epoch);
  for (const id of ids) if (epoch !== undefined && !links.epochOf.has(id)) links.epochOf.set(id, epoch);
  if (ids.length === 2 && ids[0] !== ids[1]) {
    const a = links.linked.get(ids[0]) ?? new Set([ids[0]]);
    const b = links.linked.get(ids[1]) ?? new Set([ids[1]]);
    const union = a.size >= b.size ? a : b;
    for (const id of a.size >= b.size ? b : a) union.add(id);
    for (const id of union) links.linked.set(id, union);
  }
}

/** Epoch of an entry: its `epoch` field, or that of the task it is about. */
function epochOfEntry(entry: LogEntry, links: TaskLinks | undefined): string | undefined {
  const own = str(entry.fields.epoch);
  if (own !== undefined) return own;
  if (!links) return undefined;
  const ids = taskIds(entry.fields);
  for (const id of ids) {
    const epoch = links.epochOf.get(id);
    if (epoch !== undefined) return epoch;
  }
  // A line naming only one id of a task whose other id carries the epoch (a validator's copy "val-2-…").
  for (const id of ids) {
    for (const other of links.linked.get(id) ?? []) {
      const epoch = links.epochOf.get(other);
      if (epoch !== undefined) return epoch;
    }
  }
  return undefined;
}

// ------------------------------------------------------------------------------------------- reading

export interface ReadOptions {
  maxLineBytes?: number;
  window?: number;
}

/** The files' `node` fields by file name (first lines of each file), to name addresses and resolve `--node miner-1`. */
async function sourceNodes(files: string[], maxLineBytes: number): Promise<Map<string, string>> {
  const nodes = new Map<string, string>();
  for (const file of files) {
    let read = 0;
    for await (const line of readLines(file, maxLineBytes)) {
      if (++read > 50) break;
      if (line.oversized || !line.text.startsWith("{")) continue;
      try {
        const fields = JSON.parse(line.text) as unknown;
        const node = fields && typeof fields === "object" && !Array.isArray(fields) ? ownNode(fields as Record<string, unknown>) : undefined;
        if (node) {
          nodes.set(stemOf(file), node);
          break;
        }
      } catch {
        // not JSON
      }
    }
  }
  return nodes;
}

export interface Timeline {
  files: string[];
  stats: LogStats;
  /** Address (lower case) → the log file name of the keeper with that address, e.g. "miner-1". */
  names: Map<string, string>;
}

/**
 * Reads every log file under `folder`, calls `onEntry` for each entry matching `query` in time order, and
 * returns the counts. `onEntry` may return a promise (back-pressure of the output).
 */
export async function readTimeline(
  folder: string,
  query: LogQuery,
  onEntry: (entry: LogEntry, timeline: Timeline) => void | Promise<void>,
  options: ReadOptions = {},
): Promise<Timeline> {
  checkQuery(query);
  const maxLineBytes = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  const window = Math.max(1, options.window ?? DEFAULT_REORDER_WINDOW);
  const files = await findLogFiles(folder);
  const byName = await sourceNodes(files, maxLineBytes);
  const names = new Map<string, string>();
  for (const [name, node] of byName) if (!names.has(node.toLowerCase())) names.set(node.toLowerCase(), name);
  const stats: LogStats = { files: [], entries: 0, matched: 0, nonJson: 0 };
  const timeline: Timeline = { files, stats, names };

  // --task and --epoch need the links between task ids (and their epochs) from the whole folder first.
  let links: TaskLinks | undefined;
  if (query.task !== undefined || query.epoch !== undefined) {
    links = { linked: new Map(), epochOf: new Map() };
    for (const [i, file] of files.entries()) {
      const scratch = emptyStats(file);
      for await (const entry of fileEntries(file, i, scratch, { maxLineBytes, window: 1 }, () => true)) link(links, entry.fields);
    }
  }

  // Cheap filters inside each file's stream; the ones needing the merged order after the merge.
  const minLevel = query.level !== undefined ? LEVELS[query.level.toLowerCase()] : undefined;
  const subsystems = query.subsystem?.map((s) => s.toLowerCase());
  const components = query.component?.map((c) => c.toLowerCase());
  let nodeFilter: ((entry: LogEntry) => boolean) | undefined;
  if (query.node !== undefined) {
    const wanted = query.node.toLowerCase();
    const address = /^0x[0-9a-f]{4,40}$/.test(wanted) ? wanted : byName.get(query.node)?.toLowerCase();
    if (address === undefined) throw new LogQueryError(`--node: ${printable(query.node, 60)} is neither an address nor the name of a log file that holds one`);
    const prefix = address.length < 42;
    nodeFilter = (entry) => mentions(entry.fields, address, prefix);
  }
  const keep = (entry: LogEntry): boolean =>
    (minLevel === undefined || entry.levelValue >= minLevel) &&
    (subsystems === undefined || subsystems.includes(entry.subsystem.toLowerCase())) &&
    (components === undefined || components.includes(entry.component.toLowerCase()) || components.includes(entry.source.toLowerCase())) &&
    (nodeFilter === undefined || nodeFilter(entry));

  let tasks: Set<string> | undefined;
  if (query.task !== undefined) tasks = links!.linked.get(query.task) ?? new Set([query.task]);

  const sources = files.map((file, i) => {
    const fileStats = emptyStats(file);
    stats.files.push(fileStats);
    return fileEntries(file, i, fileStats, { maxLineBytes, window }, keep);
  });
  const heads = new Heap<{ entry: LogEntry; source: number }>((a, b) => compareEntries(a.entry, b.entry));
  const pull = async (source: number) => {
    const next = await sources[source].next();
    if (!next.done) heads.push({ entry: next.value, source });
  };
  try {
    for (let i = 0; i < sources.length; i++) await pull(i);
    let since: number | undefined;
    let until: number | undefined;
    let first = true;
    while (heads.size > 0) {
      const { entry, source } = heads.pop()!;
      if (first) {
        since = resolveTime(query.since, entry.time);
        until = resolveTime(query.until, entry.time);
        first = false;
      }
      const shown =
        (since === undefined || entry.time >= since) &&
        (until === undefined || entry.time <= until) &&
        (query.epoch === undefined || epochOfEntry(entry, links) === query.epoch) &&
        (tasks === undefined || taskIds(entry.fields).some((id) => tasks!.has(id)));
      if (shown) {
        stats.matched++;
        await onEntry(entry, timeline);
      }
      await pull(source);
    }
  } finally {
    await Promise.all(sources.map((s) => s.return(undefined)));
  }
  for (const f of stats.files) {
    stats.entries += f.entries;
    stats.nonJson += f.nonJson;
  }
  return timeline;
}

function emptyStats(file: string): FileStats {
  return { file, source: stemOf(file), lines: 0, entries: 0, nonJson: 0, oversized: 0, examples: [] };
}

// ------------------------------------------------------------------------------------------ formatting

/** Fields every entry has, shown in their own columns (or not at all). */
const STANDARD = new Set(["level", "ts", "time", "component", "subsystem", "msg", "message", "pid", "hostname", "v"]);
/** Shown first, in this order, when present. */
const FIRST = ["epoch", "phase", "taskId", "ledgerTaskId", "miner", "assignee", "validator", "voter", "accuser", "executor", "ok", "invalid", "accepted", "power", "weight"];

export interface FormatOptions {
  /** No shortening of addresses, hashes and long values, no names. */
  wide?: boolean;
  names?: Map<string, string>;
}

function formatValue(value: unknown, options: FormatOptions): string {
  if (typeof value === "string") {
    if (!options.wide && ADDRESS.test(value)) {
      const name = options.names?.get(value.toLowerCase());
      return `${value.slice(0, 6)}…${value.slice(-4)}${name ? `(${printable(name, 24)})` : ""}`;
    }
    if (!options.wide && /^0x[0-9a-fA-F]{64}$/.test(value)) return `${value.slice(0, 10)}…`;
    const text = /^[^\s"=]*$/.test(value) && value !== "" ? value : JSON.stringify(value);
    return printable(text, options.wide ? Number.POSITIVE_INFINITY : 80);
  }
  if (value === null || typeof value === "number" || typeof value === "boolean") return String(value);
  let json: string;
  try {
    json = JSON.stringify(value) ?? typeof value;
  } catch {
    // Nested too deep to print (a hostile line): only its kind.
    json = Array.isArray(value) ? "[…]" : "{…}";
  }
  return printable(json, options.wide ? Number.POSITIVE_INFINITY : 80);
}

function timeText(entry: LogEntry): string {
  if (!Number.isFinite(entry.time) || entry.time === 0) return "--:--:--.---";
  return new Date(entry.time).toISOString().slice(11, 23);
}

/** One readable line: time, source (component/file), subsystem, level, message and the other fields. */
export function formatEntry(entry: LogEntry, options: FormatOptions = {}): string {
  const f = entry.fields;
  const fileNode = entry.fileNode;
  const who = !entry.component || entry.source.startsWith(entry.component) ? entry.source : `${entry.component}/${entry.source}`;
  const keys = Object.keys(f).filter((k) => !STANDARD.has(k) && !(k === "node" && fileNode !== undefined && f.node === fileNode));
  const ordered = [...FIRST.filter((k) => keys.includes(k)), ...keys.filter((k) => !FIRST.includes(k))];
  const rest = ordered.map((k) => `${printable(k, 40)}=${formatValue(f[k], options)}`).join(" ");
  const time = entry.timed ? timeText(entry) : `~${timeText(entry).slice(1)}`;
  return `${time} ${printable(who, 32).padEnd(18)} ${printable(entry.subsystem, 20).padEnd(14)} ${entry.level.padEnd(5)} ${printable(entry.msg, options.wide ? Number.POSITIVE_INFINITY : 200)}${rest ? `  ${rest}` : ""}`;
}

/** What the files held besides entries: non-JSON lines with examples, files without any entry. */
const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;

export function describeStats(stats: LogStats): string[] {
  const logs = stats.files.filter((f) => f.entries > 0);
  const others = stats.files.filter((f) => f.entries === 0);
  const nonJson = logs.reduce((sum, f) => sum + f.nonJson, 0);
  const lines = [
    `${stats.matched} of ${stats.entries === 1 ? "1 entry" : `${stats.entries} entries`} from ${plural(logs.length, "log file")}` +
      (nonJson > 0 ? `; ${plural(nonJson, "line")} in them ${nonJson === 1 ? "was" : "were"} not JSON` : "") +
      (others.length > 0 ? `; ${plural(others.length, "file")} without any JSON entry skipped` : ""),
  ];
  for (const f of stats.files) {
    if (f.entries === 0) {
      lines.push(`  ${printable(f.file)}: no JSON entries in ${f.lines} lines (not a keeper log?)`);
      continue;
    }
    if (f.nonJson === 0) continue;
    const examples = f.examples.map((e) => `line ${e.lineNo}: ${e.preview}`).join("; ");
    lines.push(`  ${printable(f.file)}: ${plural(f.nonJson, "non-JSON line")}${f.oversized ? ` (${f.oversized} too long)` : ""}, e.g. ${examples}`);
  }
  return lines;
}

// ------------------------------------------------------------------------------------- epoch summary

/**
 * The facts an epoch summary is made of, as the keepers log them (component / subsystem, the fields that
 * identify the line, what is read). A line is recognised by its subsystem and fields, not its message.
 *
 *   epoch advanced     any       Epochs         epoch, msg "epoch advanced…"       who advanced it (`node`)
 *   PoC run            miner     PoC            epoch, tried, valid, count          nonces tried / valid, rate
 *   PoC committed      miner     PoC            epoch, root, count (no `tried`)     the count committed
 *   PoC verdict        validator|miner PoC      epoch, miner, accepted, sampled     verdicts on each commitment
 *   PoC outcome        miner     PoC            epoch, outcome, acceptWeight|rejectWeight   the chain's decision (PocAccepted / PocRejected)
 *   power              miner     Power          epoch, power, raw, totalPower       final power, share, cap
 *   enrolment          master    Power          epoch, miner, power, weight         members the master enrolled
 *   task drawn         master    Tasks          epoch, ledgerTaskId, assignee, pay  the chain's draw by power
 *   task completed     master    Tasks          ledgerTaskId, assignee, resultHash  result reported on chain
 *   task expired       master    Tasks          ledgerTaskId, released              Work phase ended first
 *   validation         master    Tasks          ledgerTaskId, validator, ok, weight each TaskValidated
 *   validation duty    miner     TaskValidation epoch, taskId, probability          duty drawn or not, per node
 *   dispute            master    Disputes       ledgerTaskId, accuser | voter, seal, invalid | outcome, invalidated
 *   vote               miner     TaskValidation taskId, invalid, weight, seal (older keepers: reproduced)
 *   claim              miner     Claims         epoch, work, reward, forfeited      what each node was paid
 *   emission returned  any       Rewards        epoch, emission, paid, returned
 */
export interface EpochSummary {
  epoch: string;
  /** Entries of the epoch (tagged with it, or about one of its tasks) and the time they span. */
  entries: number;
  from?: string;
  to?: string;
  advancedBy: string[];
  nodes: NodeSummary[];
  tasks: TaskSummary[];
  emission?: { emission: string; paid: string; returned: string };
  warnings: number;
  errors: number;
  /** The first warnings and errors: time, source, message. */
  problems: string[];
}

export interface NodeSummary {
  node: string;
  name?: string;
  poc?: { tried?: number; valid?: number; count?: number; noncesPerSec?: number; committed?: number };
  /** Verdicts given on this node's commitment: who, accepted, weight. */
  verdicts: Array<{ by: string; accepted: boolean; weight?: string }>;
  /** The chain's decision on its PoC, when logged. */
  pocOutcome?: string;
  power?: { power: string; raw?: string; totalPower?: string; sharePercent?: number; capped?: boolean };
  enrolled: boolean;
  tasksAssigned: number;
  tasksCompleted: number;
  /** Validations this node sent (as validator) and duties it had / had not. */
  validations: number;
  duties: number;
  notObliged: number;
  votes: number;
  claim?: { work: string; reward: string; forfeited: boolean; missedTaskId?: string; sampled?: number };
  /** Why there is no claim, when logged ("nothing to claim", "claim window closed"). */
  noClaim?: string;
}

export interface TaskSummary {
  ledgerTaskId: string;
  taskId?: string;
  assignee?: string;
  pay?: string;
  units?: string;
  drawProbability?: number;
  state: "assigned" | "completed" | "expired" | "invalidated";
  resultHash?: string;
  validations: Array<{ validator: string; ok: boolean; weight?: string }>;
  dispute?: {
    accuser?: string;
    votes: Array<{ voter: string; invalid: boolean; weight?: string; seal?: string }>;
    /** outcome: Invalidated, Upheld or Unresolved (no seal won a majority: nobody slashed). */
    resolved?: { outcome: string; invalidated: boolean; slashed?: string; reward?: string };
  };
}

const has = (f: Record<string, unknown>, ...keys: string[]) => keys.every((k) => f[k] !== undefined && f[k] !== null);
const addr = (value: unknown): string | undefined => (typeof value === "string" && ADDRESS.test(value) ? value : undefined);
const num = (value: unknown): number | undefined => {
  const n = typeof value === "number" ? value : typeof value === "string" && value.length < 40 ? Number(value) : Number.NaN;
  return Number.isFinite(n) ? n : undefined;
};
const bool = (value: unknown): boolean => value === true || value === "true";

/** Builds the summary of `epoch` from every log under `folder`. */
export async function summarizeEpoch(folder: string, epoch: string, options: ReadOptions = {}): Promise<{ summary: EpochSummary; timeline: Timeline }> {
  if (!/^\d{1,20}$/.test(epoch)) throw new LogQueryError("--epoch: must be a non-negative integer");
  const nodes = new Map<string, NodeSummary>();
  const tasks = new Map<string, TaskSummary>();
  const summary: EpochSummary = { epoch, entries: 0, advancedBy: [], nodes: [], tasks: [], warnings: 0, errors: 0, problems: [] };
  const nodeOf = (address: string): NodeSummary => {
    const key = address.toLowerCase();
    let n = nodes.get(key);
    if (!n) {
      n = { node: address, verdicts: [], enrolled: false, tasksAssigned: 0, tasksCompleted: 0, validations: 0, duties: 0, notObliged: 0, votes: 0 };
      nodes.set(key, n);
    }
    return n;
  };
  const taskOf = (ledgerTaskId: string): TaskSummary => {
    let t = tasks.get(ledgerTaskId);
    if (!t) {
      t = { ledgerTaskId, state: "assigned", validations: [] };
      tasks.set(ledgerTaskId, t);
    }
    return t;
  };
  const validationSeen = new Set<string>();

  const timeline = await readTimeline(
    folder,
    { epoch },
    (entry) => {
      const f = entry.fields;
      const self = ownNode(f);
      const sub = entry.subsystem;
      summary.entries++;
      const when = new Date(entry.time).toISOString();
      if (entry.timed) {
        summary.from ??= when;
        summary.to = when;
      }
      if (entry.levelValue >= LEVELS.warn) {
        if (entry.levelValue >= LEVELS.error) summary.errors++;
        else summary.warnings++;
        if (summary.problems.length < 12) summary.problems.push(`${timeText(entry)} ${entry.source} ${entry.subsystem} ${entry.level}: ${printable(entry.msg, 160)}`);
      }
      const ledgerId = str(f.ledgerTaskId);
      if (sub === "Epochs" && entry.msg.startsWith("epoch advanced") && self) {
        if (!summary.advancedBy.includes(self)) summary.advancedBy.push(self);
      } else if (sub === "PoC") {
        if (has(f, "tried", "valid") && self && entry.component === "miner") {
          const n = nodeOf(self);
          n.poc = { ...n.poc, tried: num(f.tried), valid: num(f.valid), count: num(f.count), noncesPerSec: num(f.noncesPerSec) };
        } else if (has(f, "root", "count") && !has(f, "tried") && !has(f, "miner") && self && entry.component === "miner" && entry.msg.startsWith("PoC committed")) {
          const n = nodeOf(self);
          n.poc = { ...n.poc, committed: num(f.count) };
        } else if (has(f, "miner", "accepted", "sampled") && self) {
          const miner = addr(f.miner);
          if (miner) nodeOf(miner).verdicts.push({ by: self, accepted: bool(f.accepted), weight: str(f.weight) });
        } else if (has(f, "outcome") && self && !has(f, "miner")) {
          nodeOf(self).pocOutcome = str(f.outcome);
        }
      } else if (sub === "Power") {
        if (has(f, "power", "totalPower") && self && entry.component === "miner") {
          const n = nodeOf(self);
          n.power = { power: str(f.power)!, raw: str(f.raw), totalPower: str(f.totalPower), sharePercent: num(f.sharePercent), capped: f.capped === undefined ? undefined : bool(f.capped) };
        } else if (has(f, "miner", "weight") && entry.component === "master") {
          const miner = addr(f.miner);
          if (miner) {
            const n = nodeOf(miner);
            n.enrolled = true;
            n.power ??= { power: str(f.power) ?? str(f.weight)! };
          }
        }
      } else if (sub === "Work" && has(f, "weight") && self && entry.component === "miner") {
        nodeOf(self).enrolled = true;
      } else if (sub === "Tasks" && ledgerId !== undefined && entry.component === "master") {
        const t = taskOf(ledgerId);
        t.taskId ??= str(f.taskId);
        if (has(f, "assignee", "pay")) {
          const assignee = addr(f.assignee);
          if (assignee && t.assignee === undefined) nodeOf(assignee).tasksAssigned++;
          t.assignee = assignee ?? t.assignee;
          t.pay = str(f.pay);
          t.units = str(f.units);
          t.drawProbability = num(f.drawProbability);
        } else if (has(f, "assignee", "resultHash")) {
          if (t.state === "assigned") {
            t.state = "completed";
            const assignee = addr(f.assignee);
            t.assignee ??= assignee;
            if (assignee) nodeOf(assignee).tasksCompleted++;
          }
          t.resultHash = str(f.resultHash);
        } else if (has(f, "released") && t.state === "assigned") {
          t.state = "expired";
        } else if (has(f, "validator", "ok")) {
          const validator = addr(f.validator);
          if (validator && !validationSeen.has(`${ledgerId}:${validator.toLowerCase()}`)) {
            validationSeen.add(`${ledgerId}:${validator.toLowerCase()}`);
            t.validations.push({ validator, ok: bool(f.ok), weight: str(f.weight) });
            nodeOf(validator).validations++;
          }
        }
      } else if (sub === "Disputes" && ledgerId !== undefined) {
        const t = taskOf(ledgerId);
        t.taskId ??= str(f.taskId);
        t.dispute ??= { votes: [] };
        const accuser = addr(f.accuser);
        const voter = addr(f.voter);
        if (accuser) t.dispute.accuser = accuser;
        if (voter && !t.dispute.votes.some((v) => v.voter.toLowerCase() === voter.toLowerCase())) {
          const seal = str(f.seal);
          t.dispute.votes.push({ voter, invalid: bool(f.invalid), weight: str(f.weight), ...(seal ? { seal } : {}) });
        }
        if (has(f, "invalidated")) {
          const outcome = str(f.outcome) ?? (bool(f.invalidated) ? "Invalidated" : "Upheld");
          t.dispute.resolved = { outcome, invalidated: bool(f.invalidated), slashed: str(f.slashed), reward: str(f.reward) };
          if (bool(f.invalidated)) t.state = "invalidated";
        }
      } else if (sub === "TaskValidation" && self && entry.component === "miner") {
        if (has(f, "probability") && !has(f, "reproduced") && !has(f, "seal")) {
          const n = nodeOf(self);
          if (entry.msg.startsWith("validation duty")) n.duties++;
          else n.notObliged++;
        } else if (has(f, "invalid") && (has(f, "seal") || has(f, "reproduced"))) {
          nodeOf(self).votes++;
        }
      } else if (sub === "Claims" && self && entry.component === "miner") {
        if (has(f, "work", "reward")) {
          nodeOf(self).claim = { work: str(f.work)!, reward: str(f.reward)!, forfeited: bool(f.forfeited), missedTaskId: str(f.missedTaskId), sampled: num(f.sampled) };
        } else if (!has(f, "tx") && entry.levelValue >= LEVELS.info && (entry.msg.startsWith("nothing to claim") || entry.msg.startsWith("the claim window"))) {
          nodeOf(self).noClaim = printable(entry.msg, 120);
        }
      } else if (sub === "Rewards" && has(f, "emission", "paid", "returned")) {
        summary.emission = { emission: str(f.emission)!, paid: str(f.paid)!, returned: str(f.returned)! };
      }
    },
    options,
  );
  for (const n of nodes.values()) n.name = timeline.names.get(n.node.toLowerCase());
  // Miners first (by name), then any other address.
  summary.nodes = [...nodes.values()].sort((a, b) => (a.name ?? `~${a.node}`).localeCompare(b.name ?? `~${b.node}`));
  summary.tasks = [...tasks.values()].sort((a, b) => Number(a.ledgerTaskId) - Number(b.ledgerTaskId) || a.ledgerTaskId.localeCompare(b.ledgerTaskId));
  return { summary, timeline };
}

function cnet(wei: string | undefined): string {
  if (wei === undefined || !/^\d{1,78}$/.test(wei)) return wei === undefined ? "?" : printable(wei, 40);
  const value = BigInt(wei);
  if (value > 0n && value < 10n ** 14n) return `${value} wei`;
  const [whole, fraction = ""] = formatUnits(value, 18).split(".");
  const shown = fraction.slice(0, 4).replace(/0+$/, ""); // four decimals, cut (not rounded)
  return `${BigInt(whole).toLocaleString("en-US")}${shown ? `.${shown}` : ""} CNET`;
}

/** The summary as text, one fact per line. */
export function renderSummary(summary: EpochSummary, names: Map<string, string> = new Map()): string {
  const who = (address: string | undefined) => {
    if (!address) return "?";
    const name = names.get(address.toLowerCase());
    return name ? `${printable(name, 24)} (${address.slice(0, 6)}…${address.slice(-4)})` : address;
  };
  const out: string[] = [];
  const span = summary.from ? `, ${summary.from.slice(11, 19)}–${(summary.to ?? summary.from).slice(11, 19)} UTC` : "";
  out.push(`epoch ${summary.epoch}: ${summary.entries} log entries${span}; ${summary.warnings} warnings, ${summary.errors} errors`);
  if (summary.entries === 0) {
    out.push("  nothing logged about this epoch");
    return `${out.join("\n")}\n`;
  }
  if (summary.advancedBy.length > 0) out.push(`  advanced by ${summary.advancedBy.map(who).join(", ")}`);

  out.push("PoC and power");
  const powered = summary.nodes.filter((n) => n.poc || n.power || n.verdicts.length > 0 || n.pocOutcome);
  if (powered.length === 0) out.push("  no PoC or power logged");
  for (const n of powered) {
    const parts: string[] = [];
    if (n.poc?.tried !== undefined) parts.push(`PoC ${n.poc.valid ?? "?"} valid of ${n.poc.tried} tried${n.poc.noncesPerSec !== undefined ? ` (${n.poc.noncesPerSec}/s)` : ""}`);
    if (n.poc?.committed !== undefined) parts.push(`committed ${n.poc.committed}`);
    if (n.verdicts.length > 0) {
      const accepted = n.verdicts.filter((v) => v.accepted).length;
      parts.push(`verdicts ${accepted} accept / ${n.verdicts.length - accepted} reject`);
    }
    if (n.pocOutcome) parts.push(`PoC ${n.pocOutcome} on chain`);
    if (n.power) {
      const share = n.power.sharePercent !== undefined ? ` (${n.power.sharePercent}%)` : "";
      const capped = n.power.capped ? `, capped from ${n.power.raw}` : "";
      parts.push(`power ${n.power.power}${n.power.totalPower ? ` of ${n.power.totalPower}` : ""}${share}${capped}`);
    }
    if (n.enrolled) parts.push("enrolled");
    out.push(`  ${who(n.node)}: ${parts.join("; ")}`);
  }

  const count = (state: TaskSummary["state"]) => summary.tasks.filter((t) => t.state === state).length;
  out.push(
    `tasks: ${summary.tasks.length} drawn, ${count("completed")} completed, ${count("expired")} expired, ${count("invalidated")} invalidated, ${count("assigned")} still assigned`,
  );
  for (const t of summary.tasks) {
    const parts = [`#${printable(t.ledgerTaskId, 20)}${t.taskId ? ` (${printable(t.taskId, 40)})` : ""} → ${who(t.assignee)}`];
    if (t.pay !== undefined) parts.push(`pay ${cnet(t.pay)}`);
    if (t.drawProbability !== undefined) parts.push(`p ${t.drawProbability}`);
    parts.push(t.state);
    if (t.validations.length > 0) parts.push(`validations: ${t.validations.map((v) => `${who(v.validator)} ${v.ok ? "ok" : "NOT ok"}${v.weight ? ` (${v.weight})` : ""}`).join(", ")}`);
    else parts.push("no validation");
    if (t.dispute) {
      const seal = (v: { seal?: string }) => (v.seal ? ` seal ${v.seal.slice(0, 10)}` : "");
      const votes = t.dispute.votes.map((v) => `${who(v.voter)} ${v.invalid ? "invalid" : "valid"}${seal(v)}${v.weight ? ` (${v.weight})` : ""}`).join(", ");
      const r = t.dispute.resolved;
      const resolved = r
        ? `; resolved: ${
            r.outcome === "Invalidated"
              ? `INVALIDATED, slashed ${cnet(r.slashed)}`
              : r.outcome === "Unresolved"
                ? "UNRESOLVED (no seal won a majority: nobody slashed, the executor is paid)"
                : "upheld"
          }`
        : "; not resolved in the logs";
      parts.push(`DISPUTE by ${who(t.dispute.accuser)}${votes ? `, votes: ${votes}` : ""}${resolved}`);
    }
    out.push(`  ${parts.join("; ")}`);
  }

  out.push("validation duties and votes");
  const validators = summary.nodes.filter((n) => n.validations + n.duties + n.notObliged + n.votes > 0);
  if (validators.length === 0) out.push("  none logged");
  for (const n of validators) {
    out.push(`  ${who(n.node)}: ${n.validations} validations on chain, ${n.duties} duties drawn, ${n.notObliged} not obliged, ${n.votes} dispute votes`);
  }
  const disputes = summary.tasks.filter((t) => t.dispute).length;
  out.push(`disputes: ${disputes}`);

  out.push("claims");
  const claimants = summary.nodes.filter((n) => n.claim || n.noClaim);
  if (claimants.length === 0) out.push("  no claim logged");
  let work = 0n;
  let reward = 0n;
  for (const n of claimants) {
    if (n.claim) {
      if (/^\d{1,78}$/.test(n.claim.work)) work += BigInt(n.claim.work);
      if (/^\d{1,78}$/.test(n.claim.reward) && !n.claim.forfeited) reward += BigInt(n.claim.reward);
      out.push(
        `  ${who(n.node)}: work ${cnet(n.claim.work)}, reward ${n.claim.forfeited ? `FORFEITED (missed validating task #${n.claim.missedTaskId})` : cnet(n.claim.reward)}` +
          (n.claim.sampled !== undefined ? ` (duty check on ${n.claim.sampled} sampled tasks)` : ""),
      );
    } else out.push(`  ${who(n.node)}: ${n.noClaim}`);
  }
  if (claimants.some((n) => n.claim)) out.push(`  paid: work ${cnet(work.toString())}, reward ${cnet(reward.toString())}`);
  if (summary.emission) {
    out.push(`  emission ${cnet(summary.emission.emission)}: ${cnet(summary.emission.paid)} paid, ${cnet(summary.emission.returned)} returned to the vault`);
  }
  if (summary.problems.length > 0) {
    out.push(`warnings and errors (${summary.warnings + summary.errors}${summary.problems.length < summary.warnings + summary.errors ? `, first ${summary.problems.length}` : ""})`);
    for (const p of summary.problems) out.push(`  ${p}`);
  }
  return `${out.join("\n")}\n`;
}

// -------------------------------------------------------------------------------------------- command

export interface LogsFlags extends LogQuery {
  json?: boolean;
  wide?: boolean;
  epochSummary?: string;
  maxLineBytes?: number;
}

/** Writes to a stream, waiting when it asks to (a huge timeline piped into `less`). */
function writer(stream: Writable): (text: string) => Promise<void> {
  return (text) =>
    stream.write(text)
      ? Promise.resolve()
      : new Promise<void>((resolve) => {
          const done = () => {
            stream.off("drain", done);
            stream.off("error", done);
            stream.off("close", done);
            resolve();
          };
          stream.once("drain", done);
          stream.once("error", done);
          stream.once("close", done);
        });
}

/**
 * The command's work, with its streams given (tests): returns the exit code — 0, 1 when nothing could be
 * read (no folder, no log file), 2 for a bad option.
 */
export async function runLogs(folder: string, flags: LogsFlags, out: Writable, err: Writable): Promise<number> {
  const write = writer(out);
  const note = (text: string) => void err.write(`${text}\n`);
  try {
    await stat(folder);
  } catch {
    note(`logs: no such file or folder: ${printable(folder, 200)}`);
    return 1;
  }
  const options = { maxLineBytes: flags.maxLineBytes };
  try {
    if (flags.epochSummary !== undefined) {
      const { summary, timeline } = await summarizeEpoch(folder, flags.epochSummary, options);
      if (timeline.files.length === 0) {
        note(`logs: no *.log or *.jsonl file under ${printable(folder, 200)}`);
        return 1;
      }
      const names = Object.fromEntries([...timeline.names].map(([address, name]) => [address, name]));
      await write(flags.json ? `${JSON.stringify({ ...summary, names })}\n` : renderSummary(summary, timeline.names));
      for (const line of describeStats({ ...timeline.stats, matched: summary.entries })) note(`logs: ${line}`);
      return 0;
    }
    let lastDay = "";
    const timeline = await readTimeline(
      folder,
      flags,
      async (entry, t) => {
        if (flags.json) return write(`${entry.raw}\n`);
        const day = entry.time ? new Date(entry.time).toISOString().slice(0, 10) : "";
        if (day && day !== lastDay) {
          lastDay = day;
          await write(`— ${day} (UTC) —\n`);
        }
        return write(`${formatEntry(entry, { wide: flags.wide, names: t.names })}\n`);
      },
      options,
    );
    if (timeline.files.length === 0) {
      note(`logs: no *.log or *.jsonl file under ${printable(folder, 200)}`);
      return 1;
    }
    for (const line of describeStats(timeline.stats)) note(`logs: ${line}`);
    return 0;
  } catch (error) {
    if (error instanceof LogQueryError) {
      note(error.message);
      return 2;
    }
    throw error;
  }
}

const list = (value: string, previous: string[] | undefined) => [...(previous ?? []), ...value.split(",").map((s) => s.trim()).filter(Boolean)];

/** `computenet logs <folder> [summary]`. */
export function logsCommand(): Command {
  return new Command("logs")
    .description("merge the JSON logs of a devnet or test cluster into one timeline, filter it, or summarise an epoch")
    .argument("<folder>", "folder holding the keepers' *.log / *.jsonl files (searched recursively), or one file")
    .argument("[summary]", '"summary" with --epoch N: what happened in epoch N (same as --epoch-summary N)')
    .option("--node <address>", "entries naming this address in any field (case-insensitive; a prefix of 4+ hex digits, or a log file name like miner-1)")
    .option("--subsystem <names>", "only these subsystems (comma-separated, case-insensitive), e.g. PoC,Claims", list)
    .option("--task <id>", "entries about this task: the master's task id or the on-chain task id (both are linked)")
    .option("--epoch <n>", "entries of this epoch (an epoch field, or a task of that epoch)")
    .addOption(new Option("--level <level>", "lowest level shown").choices(Object.keys(LEVELS)))
    .option("--component <names>", "only these components or log files (comma-separated), e.g. master,miner-2", list)
    .option("--since <time>", "from this time: ISO (2026-11-22T09:20:10Z) or a UTC time of day (09:20:10) on the first entry's day")
    .option("--until <time>", "up to this time (same forms as --since)")
    .option("--json", "print the merged JSON lines as they are (or the summary as one JSON document)")
    .option("--wide", "do not shorten addresses, hashes and long values")
    .option("--epoch-summary <n>", "summarise epoch n: power, tasks, validations, disputes, claims")
    .action(async (folder: string, what: string | undefined, flags: LogsFlags) => {
      if (what !== undefined && what !== "summary") {
        process.stderr.write(`logs: unknown action "${printable(what, 40)}" (only "summary" with --epoch N)\n`);
        process.exit(2);
      }
      if (what === "summary") {
        if (flags.epoch === undefined && flags.epochSummary === undefined) {
          process.stderr.write("logs summary: --epoch <n> is required\n");
          process.exit(2);
        }
        flags.epochSummary ??= flags.epoch;
      }
      // A reader that stops early (`| head`) is not an error.
      process.stdout.on("error", (error: NodeJS.ErrnoException) => {
        if (error.code === "EPIPE") process.exit(0);
        throw error;
      });
      process.exitCode = await runLogs(folder, flags, process.stdout, process.stderr);
    });
}

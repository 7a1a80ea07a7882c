/**
 * The benchmark harness behind `npm run bench` (bench/run.ts is its command line): runs sections one after
 * another and gathers their figures, the machine and the targets' verdicts into one result.
 *
 * A section is a module <sections dir>/<name>.ts exporting `run({ quick })`, which resolves to a flat record
 * of named figures (and may export `how`: figure → how it was measured). A section whose module does not
 * exist is reported as not run; one that throws is recorded with its error, and the others still run.
 */
import { existsSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { type Figures, type Judged, TARGETS, judge } from "./targets.js";

export interface SectionModule {
  run(opts: { quick: boolean }): Promise<Record<string, number>>;
  how?: Record<string, string>;
}

export interface SectionResult {
  name: string;
  status: "ok" | "failed" | "not run";
  /** Why it did not run, or its error. */
  note?: string;
  elapsedSec?: number;
  /** 1-minute load average when it started: how busy the shared machine was. */
  loadAtStart?: number;
  figures: Figures;
  how: Record<string, string>;
}

export interface Machine {
  cpus: number;
  cpuModel: string;
  memoryGB: number;
  node: string;
  platform: string;
  loadAtStart: number;
}

export interface BenchResults {
  date: string;
  mode: "quick" | "full";
  command: string;
  machine: Machine;
  elapsedSec: number;
  sections: SectionResult[];
  figures: Figures;
  targets: Judged[];
}

const load = () => Math.round(os.loadavg()[0] * 100) / 100;

export function machine(): Machine {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model.trim() ?? "unknown",
    memoryGB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
    loadAtStart: load(),
  };
}

/** Runs section `name` from `dir`; never throws (a failure is the result's status). */
export async function runSection(
  dir: string,
  name: string,
  quick: boolean,
  progress: (text: string) => void,
  position = "",
  /** A "still running" line this often while the section runs (ms; 0: none). */
  stillRunningMs = 30_000,
): Promise<SectionResult> {
  const file = path.join(dir, `${name}.ts`);
  const shown = path.relative(process.cwd(), file);
  if (!existsSync(file)) {
    progress(`${name}: not run (${shown} does not exist yet)`);
    return { name, status: "not run", note: `${shown} does not exist yet`, figures: {}, how: {} };
  }
  const loadAtStart = load();
  progress(`${name}${position ? ` (${position})` : ""}: started${quick ? " (quick)" : ""}, load ${loadAtStart}`);
  const started = performance.now();
  const elapsed = () => Math.round((performance.now() - started) / 100) / 10;
  // Long sections (the whole network, the gas scan) say they are alive; the timer never keeps the process up.
  const alive = stillRunningMs > 0 ? setInterval(() => progress(`${name}: still running (${elapsed()} s, load ${load()})`), stillRunningMs) : undefined;
  alive?.unref();
  try {
    const module = (await import(pathToFileURL(file).href)) as SectionModule;
    if (typeof module.run !== "function") throw new Error(`${shown} exports no run()`);
    const raw = await module.run({ quick });
    const figures: Figures = {};
    for (const [key, value] of Object.entries(raw ?? {})) {
      if (typeof value === "number" && Number.isFinite(value)) figures[key] = value;
    }
    progress(`${name}: done in ${elapsed()} s (${Object.keys(figures).length} figures)`);
    return { name, status: "ok", elapsedSec: elapsed(), loadAtStart, figures, how: { ...module.how } };
  } catch (error) {
    const message = (error as Error)?.stack ?? String(error);
    progress(`${name}: FAILED after ${elapsed()} s: ${message.split("\n")[0]}`);
    return { name, status: "failed", note: message.split("\n").slice(0, 6).join("\n"), elapsedSec: elapsed(), loadAtStart, figures: {}, how: {} };
  } finally {
    if (alive) clearInterval(alive);
  }
}

/** Runs `names` from `dir` in order and judges the targets on what they measured. */
export async function runBench(options: {
  dir: string;
  names: readonly string[];
  quick: boolean;
  command: string;
  progress: (text: string) => void;
}): Promise<BenchResults> {
  const started = performance.now();
  const host = machine();
  options.progress(
    `${options.quick ? "quick" : "full"} run of ${options.names.join(", ")} on ${host.cpus} × ${host.cpuModel}, Node ${host.node}, load ${host.loadAtStart}`,
  );
  const sections: SectionResult[] = [];
  for (const [i, name] of options.names.entries()) {
    sections.push(await runSection(options.dir, name, options.quick, options.progress, `${i + 1}/${options.names.length}, ${Math.round((performance.now() - started) / 1000)} s into the run`));
  }
  const figures: Figures = Object.assign({}, ...sections.map((s) => s.figures));
  return {
    date: new Date().toISOString(),
    mode: options.quick ? "quick" : "full",
    command: options.command,
    machine: host,
    elapsedSec: Math.round((performance.now() - started) / 100) / 10,
    sections,
    figures,
    targets: TARGETS.map((t) => judge(t, figures)),
  };
}

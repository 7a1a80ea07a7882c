/**
 * Heartbeats to the run's master (subsystem "Heartbeat"): every interval a `POST <masterUrl>/heartbeat`
 * signed by the node key for the master's address, carrying the node's task statuses. A failed heartbeat
 * is logged and the next interval tries again; the master decides from their rhythm whether the node is
 * Healthy, Unhealthy or Dead.
 */
import type { TaskStatus } from "./docker-runtime.js";
import type { SignedClient } from "../shared/http.js";
import type { Logger } from "../shared/log.js";

export interface HeartbeatTarget {
  /** Checksummed master address: the audience of the signed request. */
  master: string;
  masterUrl: string;
}

export interface HeartbeatBody {
  runId: string;
  node: string;
  tasks: TaskStatus[];
  /** ISO 8601 time the node sent it. */
  sentAt: string;
}

export interface HeartbeaterOptions {
  client: SignedClient;
  logger: Logger;
  runId: bigint;
  node: string;
  intervalMs: number;
  /** The node's tasks of this run at the time of sending. */
  tasks: () => TaskStatus[];
}

export class Heartbeater {
  private target: HeartbeatTarget | undefined;
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;
  private stopped = false;
  private again = false;
  sent = 0;
  failed = 0;
  consecutiveFailures = 0;
  lastSuccessAt: number | undefined;
  /** The master's view of this node in its last answer ({ ok, state }). */
  lastState: string | undefined;

  constructor(private readonly options: HeartbeaterOptions) {}

  get current(): HeartbeatTarget | undefined {
    return this.target;
  }

  /** Starts (or redirects) heartbeating to `target`; the first heartbeat leaves at once. */
  setTarget(target: HeartbeatTarget): void {
    const changed = this.target?.master !== target.master || this.target?.masterUrl !== target.masterUrl;
    this.target = target;
    this.stopped = false;
    if (changed) {
      this.options.logger.info(
        { master: target.master, masterUrl: target.masterUrl, intervalMs: this.options.intervalMs },
        "heartbeating to the run's master",
      );
    }
    this.schedule(0);
  }

  /** Stops heartbeating (ejected, left, master changed, shutting down). */
  clearTarget(reason: string): void {
    if (this.target) this.options.logger.warn({ master: this.target.master, reason }, "heartbeats stopped");
    this.target = undefined;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.inFlight;
  }

  private schedule(delayMs: number): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.stopped || !this.target) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.inFlight) {
        // One heartbeat at a time: the one in flight sends the next as soon as it is done.
        this.again = true;
        return;
      }
      this.inFlight = this.beat().finally(() => {
        this.inFlight = undefined;
        const delay = this.again ? 0 : this.options.intervalMs;
        this.again = false;
        this.schedule(delay);
      });
    }, delayMs);
  }

  /** One heartbeat; never throws. */
  private async beat(): Promise<void> {
    const target = this.target;
    if (!target || this.stopped) return;
    const { logger, runId, node } = this.options;
    const body: HeartbeatBody = {
      runId: runId.toString(),
      node,
      tasks: this.options.tasks(),
      sentAt: new Date().toISOString(),
    };
    try {
      const answer = await this.options.client.call<{ ok?: boolean; state?: string }>(
        "POST",
        `${target.masterUrl}/heartbeat`,
        { audience: target.master.toLowerCase(), body },
      );
      this.sent++;
      this.lastSuccessAt = Date.now();
      if (this.consecutiveFailures > 0) {
        logger.info({ master: target.master, failuresBefore: this.consecutiveFailures }, "heartbeats reach the master again");
      }
      this.consecutiveFailures = 0;
      if (answer?.state !== this.lastState) {
        logger.info({ master: target.master, state: answer?.state, tasks: body.tasks.length }, "master's view of this node");
      }
      this.lastState = answer?.state;
      logger.debug({ master: target.master, tasks: body.tasks.length, state: answer?.state }, "heartbeat sent");
    } catch (error) {
      this.failed++;
      this.consecutiveFailures++;
      logger.warn(
        {
          master: target.master,
          masterUrl: target.masterUrl,
          err: (error as Error).message,
          consecutiveFailures: this.consecutiveFailures,
          retryInMs: this.options.intervalMs,
        },
        "heartbeat failed; retrying next interval",
      );
    }
  }
}

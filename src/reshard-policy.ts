/**
 * The periodic resharding policy (`cluster.autoReshard()`): see docs/RESHARDING.md, "The periodic policy".
 * @packageDocumentation
 */
import type { Clock, TimerHandle } from './clock.js';
import type { ShardStatus } from './cluster-status.js';
import { ShardlineError } from './errors.js';
import type { AutoReshardOptions, GatewayBotInfo, ReshardEvent, ReshardOptions, ReshardResult } from './reshard.js';

/** Round `n` up to a multiple of `m`. */
export function roundUp(n: number, m: number): number {
  const k = Math.max(1, Math.floor(m));
  return Math.ceil(n / k) * k;
}

/** What the policy needs from the cluster (internal). */
export interface PolicyHost {
  readonly clock: Clock;
  total(): number | null;
  maxConcurrency(): number;
  status(): ShardStatus[];
  busy(): boolean;
  closed(): boolean;
  fetchGatewayBot(): Promise<GatewayBotInfo>;
  reshard(total: number, options: ReshardOptions): Promise<ReshardResult>;
  debug(message: string): void;
  emit(event: ReshardEvent): void;
}

/**
 * Checks `GET /gateway/bot` every `interval` and reshards when the guilds per shard pass `guildsPerShard`, to the
 * larger of the recommended count and `ceil(guilds / guildsPerShard)`, rounded up to a multiple of
 * `max_concurrency` — only when that many IDENTIFYs fit in `budgetShare` of the remaining session starts.
 */
export class ReshardPolicy {
  private timer: TimerHandle | undefined;
  private stopped = false;
  private running: Promise<void> | null = null;
  readonly options: Required<Pick<AutoReshardOptions, 'interval' | 'guildsPerShard' | 'budgetShare'>> & Pick<AutoReshardOptions, 'reshard'>;

  constructor(
    private readonly host: PolicyHost,
    options: AutoReshardOptions = {},
  ) {
    const interval = options.interval ?? 900_000;
    const guildsPerShard = options.guildsPerShard ?? 2000;
    const budgetShare = options.budgetShare ?? 0.5;
    if (!(interval > 0)) throw new ShardlineError('INVALID_OPTION', `autoReshard.interval must be > 0, got ${String(interval)}`);
    if (!(guildsPerShard > 0)) throw new ShardlineError('INVALID_OPTION', `autoReshard.guildsPerShard must be > 0, got ${String(guildsPerShard)}`);
    if (!(budgetShare > 0 && budgetShare <= 1)) throw new ShardlineError('INVALID_OPTION', `autoReshard.budgetShare must be in (0, 1], got ${String(budgetShare)}`);
    this.options = { interval, guildsPerShard, budgetShare, reshard: options.reshard };
  }

  start(): void {
    if (this.stopped || this.timer !== undefined) return;
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    this.host.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** One check (also what the timer runs). Resolves when the check — and a reshard it started — is over. */
  check(): Promise<void> {
    this.running ??= this.doCheck()
      .catch((err: Error) => this.host.debug(`autoReshard: check failed: ${err.message}`))
      .finally(() => (this.running = null));
    return this.running;
  }

  private schedule(): void {
    this.timer = this.host.clock.setTimeout(() => {
      this.timer = undefined;
      void this.check().finally(() => {
        if (!this.stopped && !this.host.closed()) this.schedule();
      });
    }, this.options.interval);
  }

  private async doCheck(): Promise<void> {
    const h = this.host;
    const total = h.total();
    if (total === null || h.closed() || h.busy()) return;
    const guilds = h.status().reduce((n, s) => n + (s.guilds ?? 0), 0);
    const per = guilds / total;
    const { guildsPerShard, budgetShare } = this.options;
    if (per <= guildsPerShard) {
      h.debug(`autoReshard: ${guilds} guilds over ${total} shards (${per.toFixed(1)} per shard) is within ${guildsPerShard}`);
      return;
    }
    const bot = await h.fetchGatewayBot();
    const mc = bot.session_start_limit.max_concurrency || h.maxConcurrency();
    const to = roundUp(Math.max(bot.shards, Math.ceil(guilds / guildsPerShard)), mc);
    if (to <= total) return;
    const allowed = Math.floor(bot.session_start_limit.remaining * budgetShare);
    if (to > allowed) {
      const reason = `budget: resharding to ${to} needs ${to} IDENTIFYs, only ${allowed} allowed (${bot.session_start_limit.remaining} left × ${budgetShare})`;
      h.debug(`autoReshard: skipped (${reason})`);
      h.emit({ kind: 'skipped', from: total, to, reason });
      return;
    }
    h.debug(`autoReshard: ${guilds} guilds over ${total} shards (${per.toFixed(1)} per shard) passed ${guildsPerShard}: resharding to ${to}`);
    await h.reshard(to, { ...this.options.reshard, budgetShare });
  }
}

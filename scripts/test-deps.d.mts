// Types of scripts/test-deps.mjs, for the tests that import it.
export type Tool = 'chromium' | 'redis-server' | 'nats-server';
export interface World {
  env: Record<string, string | undefined>;
  platform: string;
  arch: string;
  isRoot: boolean;
  exists: (path: string) => boolean;
  chromiumPackage: () => string | null;
  hasApt: boolean;
  fresh: boolean;
}
export type Found = { kind: 'system'; path: string } | { kind: 'npm'; dir: string };
export interface ChromiumLaunch {
  executablePath: string;
  env: Record<string, string>;
}
export const ROOT: string;
export const CHROMIUM_PACKAGE: string;
export const TOOLS: Record<Tool, { env: string; names: string[]; apt: string; brew: string }>;
export function world(overrides?: Partial<World>): World;
export function locate(tool: Tool, w?: World): Found | null;
export function installPlan(missing: Tool[], w?: World): { apt: string[]; line?: undefined } | { line: string; apt?: undefined };
export function aptInstall(packages: string[], run?: (cmd: string, args: string[], opts: object) => { status: number | null; stderr?: string; error?: Error }): string | null;
export function ensureTools(
  tools: Tool[],
  w?: World,
  install?: (packages: string[]) => string | null,
): Promise<{ ok: true; notes: string[]; line?: undefined } | { ok: false; line: string; notes?: undefined }>;
export function chromiumLaunch(w?: World): Promise<ChromiumLaunch | { missing: string }>;
export function unpackChromium(packageDir: string): Promise<ChromiumLaunch>;
export function extractTar(buf: Buffer, dir: string): void;

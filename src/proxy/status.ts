/**
 * The gateway proxy's section of the status page (see `StatusPageOptions.sections`).
 * @packageDocumentation
 */
import type { StatusSection } from '../status-page/sections.js';
import type { ProxyStats } from './gateway-proxy.js';

/** Summary cards for the whole proxy and a row per upstream shard, from `proxy.stats()`. */
export function proxyStatusSection(st: ProxyStats): StatusSection {
  return {
    title: 'Gateway proxy',
    summary: [
      { label: 'clients', value: st.clients },
      { label: 'cache guilds', value: st.guilds },
      { label: 'cache bytes', value: st.cacheBytes },
      { label: 'detached sessions', value: st.detachedSessions },
      { label: 'client identifies', value: st.identifies },
      { label: 'client resumes', value: st.resumes },
      { label: 'resumes refused', value: st.resumesRefused },
      { label: 'forwarded commands', value: st.forwardedCommands },
      { label: 'REST requests', value: st.restRequests },
      { label: 'handled dispatches', value: st.handled },
    ],
    columns: ['clients', 'replay depth', 'replay bytes', 'guilds', 'forwarded commands'],
    shards: st.shards.map((s) => ({ id: s.id, values: [s.clients, s.ringDepth, s.ringBytes, s.guilds, s.commands] })),
  };
}

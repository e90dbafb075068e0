/**
 * Throwaway redis-server / nats-server processes for the distributed tests (free loopback ports, temp dirs).
 * The implementation lives with the distributed example, which needs the same thing for its demo.
 */
export { startRedis, startNats, freePort, findBinary, collectJsonLines, type ServerProcess } from '../../examples/distributed/servers.js';

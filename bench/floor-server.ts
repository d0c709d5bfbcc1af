/**
 * The node:http floor for the profile diagnostics: read the body, JSON.parse it, answer a small JSON document.
 * What one Node process on one core can serve before any framework, auth, policy or store is involved.
 *
 *   node .build/bench/bench/floor-server.js --port 8999
 */
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import { isMain } from './lib/timing.js';

if (isMain(import.meta.url)) {
  const { values } = parseArgs({ options: { port: { type: 'string', default: '0' } } });
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let body: unknown = null;
      try {
        body = chunks.length > 0 ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : null;
      } catch {
        res.writeHead(400).end();
        return;
      }
      const reply = JSON.stringify({ ok: true, agent_id: (body as { agent_id?: string } | null)?.agent_id ?? null });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(reply) }).end(reply);
    });
  });
  server.keepAliveTimeout = 65_000;
  server.listen(Number(values.port), '127.0.0.1');
  process.once('SIGTERM', () => server.close(() => process.exit(0)));
}

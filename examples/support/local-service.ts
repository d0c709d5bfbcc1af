/**
 * The tool APIs of the examples (mailbox, database, translation, chat, CRM) are small express apps on a loopback
 * port, each protecting its routes with the SDK's `createResourceServerAuth`. This starts and stops one.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type Express } from 'express';

export interface LocalService {
  name: string;
  url: string;
  close(): Promise<void>;
}

export async function startService(name: string, build: (app: Express) => void): Promise<LocalService> {
  const app = express();
  app.disable('x-powered-by');
  app.use(express.json());
  build(app);
  const server: Server = app.listen(0, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  const { port } = server.address() as AddressInfo;
  return {
    name,
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Stops every service, whatever happens to the others. */
export async function stopAll(services: readonly LocalService[]): Promise<void> {
  await Promise.allSettled(services.map((s) => s.close()));
}

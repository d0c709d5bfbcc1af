/**
 * One JSON request on a connection of its own (no keep-alive agent): for tests against several server processes,
 * where a reused connection would stay with one worker or one replica.
 */
import { request } from 'node:http';

export interface JsonAnswer {
  status: number;
  json: Record<string, unknown>;
}

export function callOnFreshConnection(
  base: string,
  method: string,
  path: string,
  key: string | undefined,
  body?: object,
  timeoutMs = 15_000,
): Promise<JsonAnswer> {
  return new Promise((ok, fail) => {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (key !== undefined) headers['authorization'] = `Bearer ${key}`;
    const req = request(`${base}${path}`, { method, agent: false, timeout: timeoutMs, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => ok({ status: res.statusCode ?? 0, json: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) }));
    });
    req.on('error', fail);
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer in ${timeoutMs / 1000} s`)));
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

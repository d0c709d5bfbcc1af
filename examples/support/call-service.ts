/**
 * How an agent's tool calls a tool API with the token its PEP obtained: plain fetch with the bearer token, and a
 * refusal surfaced as `ServiceRefused` carrying the API's status and error code (never the token).
 */
export class ServiceRefused extends Error {
  override readonly name = 'ServiceRefused';
  readonly status: number;
  readonly code: string;

  constructor(service: string, status: number, code: string, message: string) {
    super(`${service} refused the call: ${status} ${code}${message ? ` (${message})` : ''}`);
    this.status = status;
    this.code = code;
  }
}

export interface ServiceCall {
  service: string;
  method: 'GET' | 'POST';
  url: string;
  /** The bearer token. */
  token: string;
  body?: unknown;
}

export async function callService<T>(call: ServiceCall): Promise<T> {
  const response = await fetch(call.url, {
    method: call.method,
    headers: {
      authorization: `Bearer ${call.token}`,
      ...(call.body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(call.body === undefined ? {} : { body: JSON.stringify(call.body) }),
    signal: AbortSignal.timeout(5000),
  });
  const body = (await response.json().catch(() => undefined)) as { error?: { code?: string; message?: string } } | undefined;
  if (!response.ok) {
    throw new ServiceRefused(call.service, response.status, body?.error?.code ?? 'unknown', body?.error?.message ?? '');
  }
  return body as T;
}

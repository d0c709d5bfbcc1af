import { PdpError } from '../errors/pdp-error.js';
import type { Route } from './route.js';

export interface Match {
  route: Route;
  params: Record<string, string>;
}

interface Templated {
  route: Route;
  /** Literal segments as strings, parameters as `{ name }`. */
  segments: Array<string | { name: string }>;
  /** The last parameter takes the rest of the path, raw (`Route.tail`). */
  tail: boolean;
}

/**
 * Finds the route of a method and path: literal paths by one map lookup, templated ones (`/v1/tasks/{id}`) by
 * segment. A parameter matches one non-empty segment and is percent-decoded; a malformed escape is a 400 naming
 * the parameter. A `tail` route's last parameter takes the rest of the path (raw, possibly empty: the route
 * validates it). `HEAD` is served by the `GET` route. No match is a 404 `not_found`.
 */
export class Router {
  readonly #literal = new Map<string, Route>();
  readonly #templated: Templated[] = [];

  constructor(routes: readonly Route[]) {
    for (const route of routes) {
      const key = `${route.method} ${route.path}`;
      if (this.#literal.has(key) || this.#templated.some((t) => `${t.route.method} ${t.route.path}` === key)) {
        throw new TypeError(`route ${key} is declared twice`);
      }
      if (!route.path.includes('{')) {
        this.#literal.set(key, route);
        continue;
      }
      const segments = route.path.split('/').map((s) => {
        const name = /^\{([a-z_]+)\}$/.exec(s)?.[1];
        if (name === undefined && s.includes('{')) throw new TypeError(`route ${key}: a parameter must be a whole segment`);
        return name === undefined ? s : { name };
      });
      if (route.tail && typeof segments.at(-1) === 'string') throw new TypeError(`route ${key}: a tail route ends with a parameter`);
      this.#templated.push({ route, segments, tail: route.tail === true });
    }
  }

  match(method: string, path: string): Match {
    const m = method === 'HEAD' ? 'GET' : method;
    const literal = this.#literal.get(`${m} ${path}`);
    if (literal) return { route: literal, params: {} };
    const parts = path.split('/');
    for (const { route, segments, tail } of this.#templated) {
      if (route.method !== m) continue;
      if (tail) {
        if (parts.length < segments.length - 1) continue;
        const head = segments.slice(0, -1);
        const params = matchSegments(head, parts.slice(0, head.length));
        const last = segments.at(-1) as { name: string };
        if (params) return { route, params: { ...params, [last.name]: parts.slice(head.length).join('/') } };
        continue;
      }
      if (segments.length !== parts.length) continue;
      const params = matchSegments(segments, parts);
      if (params) return { route, params };
    }
    const shown = path.length > 200 ? `${path.slice(0, 200)}…` : path;
    const allowed = this.#methodsOf(path);
    if (allowed.length > 0) throw new MethodNotAllowed(`${method} is not allowed on ${shown}; allowed: ${allowed.join(', ')}`, allowed);
    throw new PdpError('not_found', `no route for ${method} ${shown}`);
  }

  /** The methods some route answers on `path` (HEAD with GET), sorted; empty when none does. */
  #methodsOf(path: string): string[] {
    const found = new Set<string>();
    for (const route of this.#literal.values()) if (route.path === path) found.add(route.method);
    const parts = path.split('/');
    for (const { route, segments, tail } of this.#templated) {
      if (found.has(route.method)) continue;
      if (tail ? parts.length >= segments.length - 1 && fitsSegments(segments.slice(0, -1), parts.slice(0, segments.length - 1)) : segments.length === parts.length && fitsSegments(segments, parts)) {
        found.add(route.method);
      }
    }
    if (found.has('GET')) found.add('HEAD');
    return [...found].sort();
  }
}

/** 405 `method_not_allowed`, with the methods the path has (the pipeline sends them as `Allow`, RFC 9110 §15.5.6). */
export class MethodNotAllowed extends PdpError {
  constructor(
    message: string,
    readonly allow: readonly string[],
  ) {
    super('method_not_allowed', message);
  }
}

/** Whether `parts` fit the segments (a malformed escape fits nothing here: the 404 stands). */
function fitsSegments(segments: Templated['segments'], parts: string[]): boolean {
  try {
    return matchSegments(segments, parts) !== undefined;
  } catch {
    return false;
  }
}

function matchSegments(segments: Templated['segments'], parts: string[]): Record<string, string> | undefined {
  const params: Record<string, string> = {};
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i];
    const part = parts[i] ?? '';
    if (typeof segment === 'string') {
      if (segment !== part) return undefined;
      continue;
    }
    if (part === '' || segment === undefined) return undefined;
    try {
      params[segment.name] = decodeURIComponent(part);
    } catch {
      throw new PdpError('invalid_request', `path parameter ${segment.name} is not valid percent-encoded UTF-8`, {
        details: [{ path: `path.${segment.name}`, message: 'malformed percent-encoding' }],
      });
    }
  }
  return params;
}

import { readFileSync } from 'node:fs';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance, FastifySchema, RouteOptions } from 'fastify';

/** How a door's clients present their key, as the document's security schemes name it. */
export type DocSecurity = 'bearer' | 'google';

/** What the API document says of a door: its tag, and how its clients authenticate. */
export interface DoorDoc {
  tag: string;
  description: string;
  security: DocSecurity;
}

/**
 * What a route adds to the document beyond its validation schema (`config.doc`): its words, the
 * body of a route that reads its own (multipart, or a path Fastify cannot express), a path to show
 * for a wildcard route, and its answers. Documentation only: nothing here validates or serializes.
 */
export interface RouteDoc {
  summary: string;
  description?: string;
  /** The path as clients call it, for a wildcard route (`/v1beta/models/{model}:predictLongRunning`). */
  path?: string;
  /** Path parameters of that path. */
  params?: Record<string, string>;
  body?: object;
  /** `multipart/form-data` besides JSON (the body schema names the form's fields). */
  multipart?: boolean;
  query?: object;
  /** A create: it takes `Idempotency-Key`. */
  idempotent?: boolean;
  /** Answers by status: a schema, or a description alone. */
  responses?: Record<number, { description: string; schema?: object; type?: string }>;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    doc?: RouteDoc;
  }
}

const VERSION = (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

const IDEMPOTENCY_HEADER = {
  type: 'object',
  properties: {
    'idempotency-key': {
      type: 'string',
      maxLength: 255,
      description:
        'The same key and body from the same key\'s tenant answer what the first request answered (`Idempotent-Replayed: true`); a repeat while the first is in flight is a 409 with `Retry-After`; the key with another body is refused (422). Kept 24 hours.',
    },
  },
};

/** The UI's Content-Security-Policy: its own files only (no validator badge, no other origin). */
const CSP = "default-src 'self'; base-uri 'self'; font-src 'self' data:; frame-ancestors 'self'; img-src 'self' data:; object-src 'none'; script-src 'self'; script-src-attr 'none'; style-src 'self'";

/** Routes kept out of the document: the documents themselves. */
const UNDOCUMENTED = /^\/(docs|openapi\.json)(\/|$)/;

/** A door as the document needs it: where it lives and what it says of itself. */
export interface DocumentedDoor {
  prefix: string;
  doc?: DoorDoc;
}

/** Every route registered, as Fastify has it (method, url): what the document must cover. */
const ROUTES = new WeakMap<FastifyInstance, SeenRoute[]>();

/** A route as registered, with whether it is kept out of the document and the path it gives there. */
export interface SeenRoute {
  method: string;
  url: string;
  hidden: boolean;
  docPath?: string;
}

/** The routes registered on `app` since `registerOpenApi`. */
export function routesOf(app: FastifyInstance): readonly SeenRoute[] {
  return ROUTES.get(app) ?? [];
}

/**
 * The OpenAPI 3.1 document of every route (`GET /openapi.json`), generated from the route
 * schemas (`@fastify/swagger`, its onRoute hook sees every route registered after this), and a
 * browsable UI of it at `/docs` (`@fastify/swagger-ui`, its files served from the package: nothing
 * from a CDN). Each route is tagged with its door, found by prefix, and carries the door's key
 * scheme; `config.doc` adds its words. A route with `schema.hide` (the dashboard's pages) is left out.
 */
export async function registerOpenApi(app: FastifyInstance, publicUrl: string, doors: readonly DocumentedDoor[]): Promise<void> {
  const routes: SeenRoute[] = [];
  ROUTES.set(app, routes);
  app.addHook('onRoute', (r: RouteOptions) => {
    for (const method of [r.method].flat()) {
      if (method === 'HEAD' || UNDOCUMENTED.test(r.url)) continue;
      const docPath = r.config?.doc?.path;
      routes.push({ method, url: r.url, hidden: (r.schema as { hide?: boolean } | undefined)?.hide === true, ...(docPath ? { docPath: docPath.replaceAll('::', ':') } : {}) });
    }
  });
  // Longest prefix first: `/v1/videos` before a shorter one that starts it.
  const documented = doors.filter((d): d is DocumentedDoor & { doc: DoorDoc } => d.doc !== undefined);
  const byPrefix = [...documented].sort((a, b) => b.prefix.length - a.prefix.length);
  const doorOf = (url: string) => byPrefix.find((d) => url === d.prefix || url.startsWith(`${d.prefix}/`));
  await app.register(fastifySwagger, {
    // The paths are the routes' own, whatever path the public URL has (`https://gw.example/api`).
    stripBasePath: false,
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Reelay',
        version: VERSION,
        description:
          'A self-hosted gateway for AI video generation. Each door speaks one public API exactly (kie, kkiai, OpenAI Videos, Gemini Veo), ' +
          "and Reelay's own API (`/reelay/v1`) shows every task in the state machine's words. Every create takes an `Idempotency-Key` header.",
      },
      servers: [{ url: publicUrl }],
      tags: [...documented.map((d) => ({ name: d.doc.tag, description: d.doc.description })), { name: 'Operations', description: 'Result files, health, readiness, metrics and upstream callbacks.' }],
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', description: 'A Reelay API key: `Authorization: Bearer <key>`.' },
          googleApiKey: { type: 'apiKey', in: 'header', name: 'x-goog-api-key', description: 'A Reelay API key, where Google clients put theirs.' },
          googleKeyQuery: { type: 'apiKey', in: 'query', name: 'key', description: 'The same key as a query parameter.' },
        },
      },
    },
    transform: ({ schema, url, route }) => {
      const doc = route.config?.doc;
      const door = doorOf(url);
      const base = (schema ?? {}) as FastifySchema & Record<string, unknown>;
      const out: Record<string, unknown> = { ...base, tags: [door?.doc.tag ?? 'Operations'] };
      if (door) out.security = door.doc.security === 'google' ? [{ googleApiKey: [] }, { googleKeyQuery: [] }] : [{ bearer: [] }];
      if (doc) {
        out.summary = doc.summary;
        if (doc.description) out.description = doc.description;
        if (doc.body && !base.body) out.body = doc.body;
        if (doc.multipart) out.consumes = ['application/json', 'multipart/form-data'];
        if (doc.query && !base.querystring) out.querystring = doc.query;
        if (doc.idempotent) out.headers = IDEMPOTENCY_HEADER;
        if (doc.params) out.params = { type: 'object', properties: Object.fromEntries(Object.entries(doc.params).map(([k, d]) => [k, { type: 'string', description: d }])), required: Object.keys(doc.params) };
        if (doc.responses) {
          out.response = Object.fromEntries(
            Object.entries(doc.responses).map(([status, r]) => [status, r.schema ? { ...(r.type ? { content: { [r.type]: { schema: r.schema } } } : r.schema), description: r.description } : { description: r.description, type: 'null' }]),
          );
        }
      }
      return { schema: out as FastifySchema, url: doc?.path ?? url };
    },
  });
  await app.register(fastifySwaggerUi, { routePrefix: '/docs', staticCSP: CSP, uiConfig: { deepLinking: true, docExpansion: 'list', validatorUrl: null } });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
}

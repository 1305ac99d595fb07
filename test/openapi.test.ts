import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { pino } from 'pino';
import { loadConfig } from '../src/config.js';
import { routesOf } from '../src/http/openapi.js';
import { type Reelay, startReelay } from '../src/reelay.js';
import { tmpDir } from './tmp.js';

const KEY = 'sk-openapi-test-key';

type Operation = { summary?: string; tags?: string[]; security?: unknown[]; responses?: Record<string, { content?: Record<string, { schema: object }> }>; parameters?: { name: string; in: string }[] };
type Doc = { openapi: string; info: { title: string; version: string }; paths: Record<string, Record<string, Operation>>; components: { securitySchemes: Record<string, unknown> } };

/** The path of a registered route as the document writes it: `:id` → `{id}`, no trailing slash. */
function docPath(url: string): string {
  return (url.replace(/:([A-Za-z0-9_]+)/g, '{$1}').replace(/\/$/, '') || '/');
}

describe('the OpenAPI document (a whole gateway in process: every door, metrics, upstream callbacks)', () => {
  let reelay: Reelay;
  let doc: Doc;
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats.default(ajv);

  before(async () => {
    const dir = tmpDir();
    const config = loadConfig({ REELAY_DATA_DIR: dir, REELAY_API_KEYS: KEY, REELAY_METRICS: 'on', REELAY_ENGINE: 'off', LOG_LEVEL: 'silent' });
    reelay = await startReelay(config, pino({ level: 'silent' }));
    await reelay.app.ready();
    const res = await reelay.app.inject('/openapi.json');
    assert.equal(res.statusCode, 200);
    doc = JSON.parse(res.body) as Doc;
  });
  after(async () => {
    await reelay?.close();
  });

  const call = async (method: 'GET' | 'POST', url: string, body?: unknown) => {
    const res = await reelay.app.inject({
      method,
      url,
      headers: { authorization: `Bearer ${KEY}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
    });
    return { status: res.statusCode, type: String(res.headers['content-type']), body: JSON.parse(res.body) as unknown };
  };
  /** Checks an answer against what the document says that route answers with that status. */
  const conforms = (path: string, method: string, answer: { status: number; type: string; body: unknown }) => {
    const op = doc.paths[path]?.[method];
    assert.ok(op, `${method} ${path} is documented`);
    const response = op.responses?.[String(answer.status)];
    assert.ok(response, `${method} ${path} documents a ${answer.status}`);
    const type = answer.type.split(';')[0]!;
    const schema = response.content?.[type]?.schema;
    assert.ok(schema, `${method} ${path} ${answer.status} documents ${type}`);
    const valid = ajv.validate(schema, answer.body);
    assert.ok(valid, `${method} ${path} ${answer.status}: ${ajv.errorsText(ajv.errors)}\n${JSON.stringify(answer.body)}`);
  };

  test('is OpenAPI 3.1 and covers every route the server has, each with a summary, its door\'s tag and key scheme', () => {
    assert.equal(doc.openapi, '3.1.0');
    assert.equal(doc.info.title, 'Reelay');
    const routes = routesOf(reelay.app).filter((r) => !r.hidden);
    // A floor, so that a hook that saw nothing cannot pass: five doors and the operations routes.
    assert.ok(routes.length >= 40, `${routes.length} routes seen`);
    const missing: string[] = [];
    for (const r of routes) {
      const method = r.method.toLowerCase();
      // A route whose path Fastify cannot write as clients call it (`{id}:cancel`) says how.
      const star = r.url.indexOf('*');
      const found = r.docPath
        ? doc.paths[r.docPath]?.[method]
        : star < 0
          ? doc.paths[docPath(r.url)]?.[method]
          : Object.entries(doc.paths).find(([p, ops]) => p.startsWith(docPath(r.url.slice(0, star))) && ops[method])?.[1][method];
      if (!found) missing.push(`${r.method} ${r.url}`);
    }
    assert.deepEqual(missing, [], 'routes missing from the document');
    for (const prefix of ['/api/v1/veo/', '/v1/video/', '/v1/videos', '/v1beta/', '/reelay/v1/', '/metrics', '/upstream-callbacks/', '/files/']) {
      assert.ok(Object.keys(doc.paths).some((p) => p.startsWith(prefix)), `a path under ${prefix}`);
    }
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        assert.ok(op.summary, `${method} ${path} has a summary`);
        assert.equal(op.tags?.length, 1, `${method} ${path} has one tag`);
        const door = !/^\/(files|healthz|readyz|metrics|upstream-callbacks)/.test(path);
        assert.equal(op.security !== undefined, door, `${method} ${path}: a key scheme exactly where a key is asked for`);
      }
    }
    assert.ok(doc.paths['/v1beta/models/{model}:predictLongRunning']?.post, 'Gemini\'s create is written as clients call it');
    assert.deepEqual(Object.keys(doc.components.securitySchemes).sort(), ['bearer', 'googleApiKey', 'googleKeyQuery']);
    const creates = ['/reelay/v1/tasks', '/api/v1/veo/generate', '/api/v1/veo/extend', '/api/v1/veo/get-4k-video', '/v1/video/create', '/v1/videos', '/v1/videos/{id}/remix', '/v1/videos/extensions', '/v1beta/models/{model}:predictLongRunning'];
    for (const p of creates) {
      assert.ok(doc.paths[p]?.post?.parameters?.some((x) => x.in === 'header' && x.name.toLowerCase() === 'idempotency-key'), `${p} documents Idempotency-Key`);
    }
  });

  test('the native API answers what it documents: task, list, events, deliveries, balance, ledger, webhooks, problems', async () => {
    const created = await call('POST', '/reelay/v1/tasks', { model: 'veo3.1-fast', prompt: 'a documented lighthouse', seconds: 4, webhook_url: 'https://example.com/hook' });
    assert.equal(created.status, 200, JSON.stringify(created.body));
    conforms('/reelay/v1/tasks', 'post', created);
    const id = (created.body as { id: string }).id;
    conforms('/reelay/v1/tasks/{id}', 'get', await call('GET', `/reelay/v1/tasks/${id}`));
    conforms('/reelay/v1/tasks', 'get', await call('GET', '/reelay/v1/tasks?limit=1'));
    conforms('/reelay/v1/tasks/{id}/events', 'get', await call('GET', `/reelay/v1/tasks/${id}/events`));
    conforms('/reelay/v1/tasks/{id}/deliveries', 'get', await call('GET', `/reelay/v1/tasks/${id}/deliveries`));
    conforms('/reelay/v1/tasks/{id}/cancel', 'post', await call('POST', `/reelay/v1/tasks/${id}/cancel`));
    const again = await call('POST', `/reelay/v1/tasks/${id}/cancel`);
    assert.equal(again.status, 200);
    conforms('/reelay/v1/balance', 'get', await call('GET', '/reelay/v1/balance'));
    conforms('/reelay/v1/ledger', 'get', await call('GET', '/reelay/v1/ledger'));
    const endpoint = await call('POST', '/reelay/v1/webhooks', { url: 'https://example.com/endpoint' });
    conforms('/reelay/v1/webhooks', 'post', endpoint);
    conforms('/reelay/v1/webhooks', 'get', await call('GET', '/reelay/v1/webhooks'));
    const missing = await call('GET', '/reelay/v1/tasks/task_nope');
    assert.equal(missing.status, 404);
    conforms('/reelay/v1/tasks/{id}', 'get', missing);
    const bad = await call('POST', '/reelay/v1/tasks', { model: 'veo3.1-fast', prompt: 'p', seconds: 5 });
    assert.equal(bad.status, 400);
    conforms('/reelay/v1/tasks', 'post', bad);
    // And the schema is not a pass-all: a task with a state outside the machine's is refused.
    const schema = doc.paths['/reelay/v1/tasks/{id}']!.get!.responses!['200']!.content!['application/json']!.schema;
    assert.equal(ajv.validate(schema, { ...(created.body as object), state: 'running' }), false);
  });

  test('/docs is a browsable UI served from the package: nothing is fetched from another origin', async () => {
    const page = await reelay.app.inject('/docs');
    assert.equal(page.statusCode, 200);
    assert.match(String(page.headers['content-type']), /text\/html/);
    assert.match(page.body, /swagger-ui-bundle\.js/);
    const urls = [...page.body.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    assert.ok(urls.length >= 3);
    assert.deepEqual(urls.filter((u) => /^(https?:)?\/\//.test(u)), [], 'every script and style is local');
    for (const u of urls) {
      const res = await reelay.app.inject(new URL(u, 'http://x/docs/').pathname);
      assert.equal(res.statusCode, 200, u);
    }
    const csp = String(page.headers['content-security-policy']);
    assert.doesNotMatch(csp, /validator\.swagger\.io/);
    const init = await reelay.app.inject('/docs/static/swagger-initializer.js');
    assert.equal(init.statusCode, 200);
    assert.match(init.body, /\.\/json|docs\/json/);
  });
});

import { html, type Html, type Value } from './html.js';
import type { Viewer } from './session.js';

/** Where the vendored and own assets are served. */
export const ASSETS = '/dashboard/assets';

export type Section = 'overview' | 'tasks' | 'new' | 'signin' | 'none';

/**
 * A whole page: the head (one CSS file, htmx and its SSE extension, no inline script: htmx is
 * configured by its meta tag), the top nav when signed in, and `body`. Every htmx request of the
 * page carries the session's CSRF token in `X-CSRF-Token` (`hx-headers`).
 */
export function page(o: { title: string; viewer?: Viewer; section: Section; body: Value }): Html {
  const v = o.viewer;
  const link = (section: Section, href: string, text: string) => html`<a href="${href}"${o.section === section ? html` aria-current="page"` : ''}>${text}</a>`;
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="htmx-config" content='{"includeIndicatorStyles":false,"allowEval":false,"allowScriptTags":false,"historyCacheSize":0}'>
<title>${o.title} · Reelay</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="${ASSETS}/dashboard.css">
<script src="${ASSETS}/htmx.min.js" defer></script>
<script src="${ASSETS}/sse.min.js" defer></script>
</head>
<body hx-ext="sse"${v ? html` hx-headers='${JSON.stringify({ 'x-csrf-token': v.csrf })}'` : ''}>
<header class="top">
<a class="brand" href="/dashboard">Reelay</a>
${v
  ? html`<nav>
${link('overview', '/dashboard', 'Overview')}
${link('tasks', '/dashboard/tasks', 'Tasks')}
${link('new', '/dashboard/new', 'New video')}
</nav>
<div class="who"><span class="key" title="${v.keyId}">${v.keyName}</span>${v.operator ? html` <span class="badge operator">operator</span>` : ''}
<form method="post" action="/dashboard/signout" class="inline"><input type="hidden" name="_csrf" value="${v.csrf}"><button type="submit" class="link">Sign out</button></form></div>`
  : ''}
</header>
<main>
${o.body}
</main>
</body>
</html>
`;
}

/** The page of a task or page that does not exist, or is another tenant's (the same either way). */
export function notFound(viewer: Viewer | undefined, what: string): Html {
  return page({ title: 'Not found', section: 'none', ...(viewer ? { viewer } : {}), body: html`<h1>Not found</h1><p class="muted">${what}</p><p><a href="/dashboard/tasks">All tasks</a></p>` });
}

/** An error shown in place of a page (a form refused, a request that failed). */
export function problem(viewer: Viewer | undefined, title: string, message: string): Html {
  return page({ title, section: 'none', ...(viewer ? { viewer } : {}), body: html`<h1>${title}</h1><p class="error">${message}</p>` });
}

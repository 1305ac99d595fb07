import { createRequire } from 'node:module';
import type BetterSqlite3 from 'better-sqlite3';

/**
 * The SQLite driver for this runtime: better-sqlite3 13 where Node-API 10 is there (Node 22.14
 * and later, 24, 26), better-sqlite3 12 elsewhere (Node 20, 22.12–22.13).
 *
 * Why two: better-sqlite3 12 wraps its objects in `node::ObjectWrap`. Built against Node 24.19's
 * headers or later, that class's destructor calls `RemoveEnvironmentCleanupHook`, which on the
 * 24.19–24.21 runtimes aborts the process unless a V8 context is entered. A garbage collection
 * started by an allocation inside V8's own code has none, and a statement object it finalizes
 * aborts Reelay (`Assertion failed: (env) != nullptr`). better-sqlite3 13 is built on Node-API
 * and has no such destructor, but it needs Node-API 10, which Node 20 never got (it crashes
 * there). Version 12 built against Node 20's or 22's headers has no cleanup hook, so it is safe
 * where it is used. README ("Node versions") has the whole story.
 *
 * `REELAY_SQLITE_DRIVER=12` forces version 12 (to compare the two on one runtime).
 */
const require = createRequire(import.meta.url);

export const sqliteDriver: 'better-sqlite3' | 'better-sqlite3-12' =
  process.env.REELAY_SQLITE_DRIVER === '12' || Number(process.versions.napi) < 10 ? 'better-sqlite3-12' : 'better-sqlite3';

function load(): typeof BetterSqlite3 {
  try {
    return require(sqliteDriver) as typeof BetterSqlite3;
  } catch (e) {
    // better-sqlite3-12 is an optional dependency (npm installs it everywhere, and a failed build
    // must not fail the install on Node 22 and 24, which do not use it).
    throw new Error(
      `${sqliteDriver} could not be loaded on Node ${process.versions.node} (Node-API ${process.versions.napi}): ` +
        `${(e as Error).message.split('\n')[0]}. Run "npm install" again (not with --omit=optional) on a machine with a C++ toolchain.`,
    );
  }
}

const Sqlite = load();
export default Sqlite;

import type { Page, Task } from './types.js';

/**
 * A listing: awaited, its first page (`{data, nextCursor, hasMore}`); iterated with `for await`,
 * every item of every page, each page read when the one before is used up.
 *
 * @example
 *   const { data, hasMore } = await reelay.list({ limit: 10 });
 *   for await (const task of reelay.list({ state: 'failed' })) console.log(task.id);
 */
export class TaskPage<T = Task> implements PromiseLike<Page<T>>, AsyncIterable<T> {
  private first: Promise<Page<T>> | undefined;

  /** `read(cursor)` reads the page after `cursor` (the first page for undefined). */
  constructor(
    private readonly read: (cursor: string | undefined) => Promise<Page<T>>,
    private readonly start?: string,
  ) {}

  private firstPage(): Promise<Page<T>> {
    return (this.first ??= this.read(this.start));
  }

  then<A = Page<T>, B = never>(onFulfilled?: ((page: Page<T>) => A | PromiseLike<A>) | null, onRejected?: ((reason: unknown) => B | PromiseLike<B>) | null): PromiseLike<A | B> {
    return this.firstPage().then(onFulfilled, onRejected);
  }

  /** Every page, the first one first. */
  async *pages(): AsyncGenerator<Page<T>> {
    let page = await this.firstPage();
    yield page;
    while (page.hasMore && page.nextCursor) {
      page = await this.read(page.nextCursor);
      yield page;
    }
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for await (const page of this.pages()) yield* page.data;
  }
}

/**
 * Ownership of resources (STYLE.md §2, after vscode's lifecycle.ts). Everything that must be released —
 * databases, servers, subscriptions, child processes — is registered with an owner from birth; disposing the
 * owner disposes its children in reverse order of registration, even when one of them throws.
 */
export interface Disposable {
  dispose(): void | Promise<void>;
}

export interface DisposableStore extends Disposable {
  /** Take ownership of `child`; returns it for chaining. Adding to a disposed store disposes the child at once. */
  add<T extends Disposable>(child: T): T;
  readonly isDisposed: boolean;
  /** Disposes children last-in first-out; resolves when all are done; rethrows the first failure after all ran. */
  dispose(): Promise<void>;
}

export function toDisposable(fn: () => void | Promise<void>): Disposable {
  let done = false;
  return {
    dispose() {
      if (done) return;
      done = true;
      return fn();
    },
  };
}

export function createDisposableStore(): DisposableStore {
  const children: Disposable[] = [];
  let disposed = false;
  return {
    get isDisposed() {
      return disposed;
    },
    add(child) {
      if (disposed) {
        void Promise.resolve()
          .then(() => child.dispose())
          .catch(() => undefined);
      } else {
        children.push(child);
      }
      return child;
    },
    async dispose() {
      if (disposed) return;
      disposed = true;
      const errors: unknown[] = [];
      while (children.length > 0) {
        const child = children.pop()!;
        try {
          await child.dispose();
        } catch (err) {
          errors.push(err);
        }
      }
      if (errors.length === 1) throw errors[0];
      if (errors.length > 1) throw new AggregateError(errors, `${errors.length} resources failed to dispose`);
    },
  };
}

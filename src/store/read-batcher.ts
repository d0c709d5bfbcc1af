/**
 * Reads by key, combined: the keys asked for during one turn of the event loop are read with one statement in the
 * next (`fetch` gets them all and answers each). On PostgreSQL every statement is a round trip and a socket write
 * each way, which cost more than the read itself: the decide path's task read, one per decision, becomes one per
 * batch of concurrent decisions. A read still starts after the call that asks for it, so it sees every commit made
 * before the call (a task completed on another replica is seen by the next decision here).
 */
export class ReadBatcher<V> {
  private waiting = new Map<string, Array<{ resolve: (value: V | undefined) => void; reject: (error: unknown) => void }>>();
  private scheduled = false;

  /** `fetch` answers every key it finds (one statement); a key it leaves out has no value. */
  constructor(
    private readonly fetch: (keys: string[]) => Promise<Map<string, V>>,
    private readonly maxKeys = 500,
  ) {}

  load(key: string): Promise<V | undefined> {
    return new Promise((resolve, reject) => {
      const list = this.waiting.get(key);
      if (list === undefined) this.waiting.set(key, [{ resolve, reject }]);
      else list.push({ resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.run());
      }
    });
  }

  private run(): void {
    this.scheduled = false;
    const batch = this.waiting;
    this.waiting = new Map();
    const keys = [...batch.keys()];
    for (let from = 0; from < keys.length; from += this.maxKeys) {
      const part = keys.slice(from, from + this.maxKeys);
      this.fetch(part).then(
        (found) => {
          for (const key of part) for (const w of batch.get(key) ?? []) w.resolve(found.get(key));
        },
        (error: unknown) => {
          for (const key of part) for (const w of batch.get(key) ?? []) w.reject(error);
        },
      );
    }
  }
}

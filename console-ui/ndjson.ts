/* Reads an NDJSON response body line by line as it arrives (fetch + ReadableStream + TextDecoder). */

export async function* ndjsonLines(res: Response): AsyncGenerator<unknown> {
  if (res.body === null) return;
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      buffer += decoder.decode(value ?? new Uint8Array(), { stream: !done });
      let nl = buffer.indexOf('\n');
      while (nl !== -1) {
        const line = buffer.slice(0, nl).trim();
        buffer = buffer.slice(nl + 1);
        if (line !== '') yield JSON.parse(line) as unknown;
        nl = buffer.indexOf('\n');
      }
      if (done) break;
    }
    if (buffer.trim() !== '') yield JSON.parse(buffer) as unknown;
  } finally {
    reader.releaseLock();
  }
}

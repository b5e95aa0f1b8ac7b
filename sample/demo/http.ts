/** The HTTP calls the demo makes, and a reader for the server-sent-events route. */

export interface HttpResult<T = unknown> {
  status: number;
  body: T;
}

export async function request<T = unknown>(baseUrl: string, method: 'GET' | 'POST', path: string, body?: unknown): Promise<HttpResult<T>> {
  const response = await fetch(`${baseUrl}${path}`, {
    method,
    headers: body === undefined ? undefined : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(15_000),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}

export interface ServerSentEvent {
  type: string;
  data: unknown;
}

/** Reads an SSE response event by event, calling `onEvent` as each arrives; resolves at the end. */
export async function readEvents(url: string, onEvent: (event: ServerSentEvent) => void): Promise<ServerSentEvent[]> {
  const response = await fetch(url, { headers: { accept: 'text/event-stream' }, signal: AbortSignal.timeout(30_000) });
  if (!response.ok || !response.body) throw new Error(`GET ${url} answered ${response.status}`);
  const events: ServerSentEvent[] = [];
  const decoder = new TextDecoder();
  let buffered = '';
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    buffered += decoder.decode(chunk, { stream: true });
    let end: number;
    while ((end = buffered.indexOf('\n\n')) >= 0) {
      const event = parseEvent(buffered.slice(0, end));
      buffered = buffered.slice(end + 2);
      if (!event) continue;
      events.push(event);
      onEvent(event);
    }
  }
  return events;
}

function parseEvent(block: string): ServerSentEvent | undefined {
  let type = 'message';
  const data: string[] = [];
  for (const line of block.split('\n')) {
    if (line.startsWith('event:')) type = line.slice(6).trim();
    else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
  }
  if (data.length === 0) return undefined;
  const text = data.join('\n');
  try {
    return { type, data: JSON.parse(text) };
  } catch {
    return { type, data: text };
  }
}

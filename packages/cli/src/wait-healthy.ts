/** True once every URL answers 2xx (each asked every 100 ms, at most 2 s a try), false at the deadline. */
export async function waitHealthy(urls: readonly string[], timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (const url of urls) {
    while (
      !(await fetch(url, { signal: AbortSignal.timeout(2000) }).then(
        (response) => response.ok,
        () => false,
      ))
    ) {
      if (Date.now() > deadline) return false;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  return true;
}

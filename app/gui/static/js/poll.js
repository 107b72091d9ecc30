// Runs `tick` now and every `interval` ms until stopped; never two ticks at once.
export function poll(tick, interval = 2000) {
  let stopped = false;
  let timer = null;
  const run = async () => {
    if (stopped) return;
    try { await tick(); } catch (err) { if (!stopped) console.warn('refresh failed:', err.message); }
    if (!stopped) timer = setTimeout(run, interval);
  };
  run();
  return {
    stop() { stopped = true; clearTimeout(timer); },
    async now() { clearTimeout(timer); await run(); },
  };
}

/** Plugin Studio: plugin authors load, verify and try signed plugins against the real sandbox (seed 004). */
export function StudioArea() {
  return (
    <section class="placeholder">
      <h2>Plugin Studio</h2>
      <p>No plugins are loaded.</p>
      <p class="hint">From the command line: <code>tessera doctor</code> shows whether isolates can run on this machine.</p>
    </section>
  );
}

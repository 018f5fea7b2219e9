/** Journey Guide: the traveller's step-by-step guide. Journeys come from product sessions (seed 000). */
export function JourneyArea() {
  return (
    <section class="placeholder">
      <h2>Journey Guide</h2>
      <p>No journey is loaded on this device.</p>
      <p class="hint">A journey appears here when a product session starts one: each step, what to do next, and what works offline.</p>
    </section>
  );
}

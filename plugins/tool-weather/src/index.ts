/**
 * tool-weather: current weather for a city from a weather service on its allowlist (http.fetch, an effect:
 * the call needs a permit for this exact input). The service answers `{"temp_c": number, "summary": string}`.
 */
import type { ToolHost } from '../../sdk/index.js';

interface Args {
  city: string;
}

const SERVICE = 'http://127.0.0.1:47831';

export async function invoke(args: Args, host: ToolHost): Promise<{ city: string; temp_c: number; summary: string }> {
  if (!args || typeof args.city !== 'string' || args.city.trim() === '') throw new Error('args must be {city: string}');
  const res = (await host.call('http.fetch', { url: `${SERVICE}/v1/current?city=${encodeURIComponent(args.city)}` })) as { status: number; json?: { temp_c?: unknown; summary?: unknown } };
  if (res.status !== 200 || typeof res.json?.temp_c !== 'number') throw new Error(`the weather service answered ${res.status}`);
  return { city: args.city, temp_c: res.json.temp_c, summary: String(res.json.summary ?? '') };
}

/**
 * The Journey Guide's map (issue 15 point 4), drawn offline as one SVG from the city package's geometry
 * (`GET /api/city/map`): no tile server, nothing fetched from outside the kiosk. Streets are thin lines, tram lines
 * coloured, stops small dots, the journey's places numbered markers in itinerary order (the current one ringed,
 * done ones dimmed), the route to the next place bold (transit legs dashed in their line's colour).
 *
 * Degraded routing (seed 000 §7.1): no package map — the map shows only the places and the static route's polyline
 * when the document has one. The projection and framing are ./guide-model.ts's (`projection`, `mapBounds`).
 *
 * The SVG is drawn in the pixels of the box it fills (styles.css sizes `.guide-map`; a ResizeObserver reads it): the
 * frame grows to the box's proportions, so markers and their numbers are the same size on a laptop and on a kiosk.
 */
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { JourneyNodeView, RoutePlan } from '../../../main/common/journeys.js';
import type { CityMap } from '../../../main/common/journeys-api.js';
import type { GuideTexts } from './guide-model.js';
import { fitAspect, mapBounds, nodeStatus, pathOf, pathsOf, projection, routeLines } from './guide-model.js';

/** Tram line colours, in the order the package lists its lines (distinct on light streets, never the route's blue). */
const LINE_COLOURS = ['#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0d9488', '#ca8a04'];
/** Until the box is measured (and in a test without layout). */
const DEFAULT_BOX = { width: 800, height: 600 };

/** `caption`: the city package's age, set on the map like a paper map's edition line. */
export function GuideMap(props: { map: CityMap | null; nodes: readonly JourneyNodeView[]; current: string | null; route: RoutePlan | null; texts: GuideTexts; caption?: string | null }) {
  const { map, nodes, current, route, texts } = props;
  const box = useRef<HTMLDivElement | null>(null);
  const [size, setSize] = useState(DEFAULT_BOX);
  useEffect(() => {
    const el = box.current;
    if (!el || typeof ResizeObserver === 'undefined') return;
    const observer = new ResizeObserver(([entry]) => {
      const { width, height } = entry!.contentRect;
      if (width >= 50 && height >= 50) setSize((old) => (Math.abs(old.width - width) < 1 && Math.abs(old.height - height) < 1 ? old : { width: Math.round(width), height: Math.round(height) }));
    });
    observer.observe(el);
    return () => observer.disconnect();
  }, []);
  const legs = useMemo(() => routeLines(route), [route]);
  const places = useMemo(() => nodes.map((n) => n.place.location), [nodes]);
  // Framing follows the places, the route and the box: recomputed when they change, not on every poll's equal answer.
  const frameKey = JSON.stringify([places, legs.map((l) => l.path), size]);
  const proj = useMemo(() => {
    const b = mapBounds(map?.bbox ?? null, places, legs.flatMap((l) => l.path));
    if (!b) return null;
    // Room at the bottom for the caption, so it never hides the southernmost place.
    const framed = props.caption ? { ...b, south: b.south - (b.north - b.south) * 0.12 } : b;
    return projection(fitAspect(framed, size.width / size.height), size.width);
  }, [map, frameKey, Boolean(props.caption)]);
  // Thousands of streets in one path, built once per map and frame.
  const ways = useMemo(() => (map && proj ? pathsOf(map.ways, proj) : ''), [map, proj]);
  const lineColour = new Map((map?.lines ?? []).map((l, i) => [l.name, LINE_COLOURS[i % LINE_COLOURS.length]!]));
  // Markers readable at arm's length on a large screen.
  const r = size.width >= 900 ? 26 : 20;
  return (
    <div class="guide-map" ref={box}>
      {!proj ? (
        <p class="hint" data-testid="guide-map-none">
          {texts.mapNone}
        </p>
      ) : (
        <svg class="guide-map-svg" data-testid="guide-map" data-source={map ? 'package' : 'places'} viewBox={`0 0 ${proj.width} ${proj.height}`} role="img" aria-label={texts.map} preserveAspectRatio="xMidYMid slice">
          <rect class="guide-map-ground" x="0" y="0" width={proj.width} height={proj.height} />
          {ways && <path class="guide-map-ways" data-testid="guide-map-ways" d={ways} />}
          {map?.lines.map((l) => (
            <path key={l.name} class="guide-map-line" data-testid="guide-map-line" data-line={l.name} d={pathOf(l.path, proj)} stroke={lineColour.get(l.name)} />
          ))}
          {map?.stops.map((s) => {
            const [x, y] = proj.project(s.location);
            return <circle key={s.id} class="guide-map-stop" data-testid="guide-map-stop" cx={x} cy={y} r={5} />;
          })}
          {legs.map((leg, i) => {
            const line = route?.legs[i]?.line;
            return <path key={i} class={`guide-map-route ${leg.mode}`} data-testid="guide-map-route" data-mode={leg.mode} d={pathOf(leg.path, proj)} {...(leg.mode === 'transit' && line && lineColour.has(line) ? { stroke: lineColour.get(line) } : {})} />;
          })}
          {nodes.map((n, i) => {
            const [x, y] = proj.project(n.place.location);
            const status = nodeStatus(n, current);
            return (
              <g key={n.id} class={`guide-map-marker ${status}`} data-testid="guide-map-marker" data-node={n.id} data-status={status} transform={`translate(${x.toFixed(1)} ${y.toFixed(1)})`}>
                <title>{`${i + 1}. ${n.place.name}`}</title>
                {(status === 'current' || status === 'here') && <circle class="guide-map-halo" r={r + 10} />}
                <circle r={r} />
                <text text-anchor="middle" dominant-baseline="central" font-size={r * 1.1}>
                  {status === 'done' ? '✓' : status === 'skipped' ? '–' : String(i + 1)}
                </text>
              </g>
            );
          })}
        </svg>
      )}
      {props.caption && (
        <p class="guide-age guide-map-caption" data-testid="guide-package-age">
          {props.caption}
        </p>
      )}
    </div>
  );
}

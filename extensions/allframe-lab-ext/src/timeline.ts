/**
 * application/vnd.allframe.timeline+json: event swimlanes.
 *
 * One lane per stream; each event is a marker placed by its occurred_at (or, switched in the
 * toolbar, by its global position); clicking a marker shows the event's payload. The same
 * function renders notebook outputs and the sidebar's stream panels.
 */
import { colourFor, errorBox, h, prettyJSON, replaceChildren } from './dom';
import { timelineV1 } from './schemas.generated';
import { check } from './validate';

/** One event of a timeline.v1 payload. */
export interface ITimelineEvent {
  lane: string;
  position: number;
  version?: number;
  type: string;
  time: string;
  data?: { [key: string]: unknown };
  metadata?: { [key: string]: unknown };
}

/** A timeline.v1 payload (see allframe_lab/notebook/schemas/timeline.v1.json). */
export interface ITimelinePayload {
  schema: 'allframe.timeline';
  version: 1;
  title?: string;
  lanes: { id: string; label?: string }[];
  events: ITimelineEvent[];
}

type Scale = 'time' | 'position';

/** Markers closer than this (percent of the track) stack on another row of the lane. */
const MIN_GAP = 1.6;
/** Rows per lane before markers are allowed to overlap. */
const MAX_ROWS = 6;
const ROW_HEIGHT = 16;

function formatTime(ms: number): string {
  return Number.isFinite(ms) ? new Date(ms).toISOString().replace('.000Z', 'Z') : '?';
}

/** Fractions in [0, 1] along the track for every event, by time or by position. */
function placements(events: ITimelineEvent[], scale: Scale): number[] {
  const values = events.map(e => (scale === 'time' ? Date.parse(e.time) : e.position));
  const finite = values.filter(Number.isFinite);
  const lo = Math.min(...finite);
  const hi = Math.max(...finite);
  if (!finite.length || hi === lo) {
    // one instant (or no usable time): spread by position so every event stays clickable
    const positions = events.map(e => e.position);
    const pLo = Math.min(...positions);
    const pHi = Math.max(...positions);
    return events.map(e => (pHi === pLo ? 0.5 : (e.position - pLo) / (pHi - pLo)));
  }
  return values.map(v => (Number.isFinite(v) ? (v - lo) / (hi - lo) : 0));
}

/** Greedy row assignment so that markers of one lane do not sit on top of each other. */
function assignRows(lefts: number[]): number[] {
  const order = lefts.map((left, index) => ({ left, index })).sort((a, b) => a.left - b.left);
  const rowEnds: number[] = [];
  const rows = new Array<number>(lefts.length).fill(0);
  for (const { left, index } of order) {
    let row = rowEnds.findIndex(end => left - end >= MIN_GAP);
    if (row < 0) {
      row = rowEnds.length < MAX_ROWS ? rowEnds.length : 0;
    }
    rowEnds[row] = left;
    rows[index] = row;
  }
  return rows;
}

function buildLanes(payload: ITimelinePayload): { id: string; label: string }[] {
  const lanes = payload.lanes.map(lane => ({ id: lane.id, label: lane.label ?? lane.id }));
  const known = new Set(lanes.map(lane => lane.id));
  for (const event of payload.events) {
    if (!known.has(event.lane)) {
      known.add(event.lane); // an event naming an undeclared lane still gets one
      lanes.push({ id: event.lane, label: event.lane });
    }
  }
  return lanes;
}

function drawLanes(
  body: HTMLElement,
  payload: ITimelinePayload,
  scale: Scale,
  select: (event: ITimelineEvent, marker: HTMLElement) => void
): void {
  const lanes = buildLanes(payload);
  const fractions = placements(payload.events, scale);
  const byLane = new Map<string, number[]>(lanes.map(lane => [lane.id, []]));
  payload.events.forEach((event, index) => byLane.get(event.lane)?.push(index));
  const rows: HTMLElement[] = [];
  for (const lane of lanes) {
    const indices = byLane.get(lane.id) ?? [];
    const lefts = indices.map(i => 1 + 98 * fractions[i]);
    const laneRows = assignRows(lefts);
    const track = h('div', { class: 'allframe-timeline-track' });
    track.style.height = `${ROW_HEIGHT * (Math.max(0, ...laneRows) + 1) + 6}px`;
    indices.forEach((eventIndex, k) => {
      const event = payload.events[eventIndex];
      const marker = h('button', {
        class: 'allframe-timeline-event',
        type: 'button',
        'data-position': String(event.position),
        'data-type': event.type,
        title: `${event.type} · position ${event.position}` +
          (event.version !== undefined ? ` · version ${event.version}` : '') + ` · ${event.time}`,
        'aria-label': `${event.type} at position ${event.position}`
      });
      marker.style.left = `${lefts[k]}%`;
      marker.style.top = `${3 + ROW_HEIGHT * laneRows[k]}px`;
      marker.style.background = colourFor(event.type);
      marker.addEventListener('click', () => select(event, marker));
      track.append(marker);
    });
    rows.push(
      h(
        'div',
        { class: 'allframe-timeline-lane', 'data-lane': lane.id },
        h('div', { class: 'allframe-timeline-label', title: lane.label }, lane.label),
        track
      )
    );
  }
  const times = payload.events.map(e => Date.parse(e.time)).filter(Number.isFinite);
  const positions = payload.events.map(e => e.position);
  const axis =
    scale === 'time'
      ? [formatTime(Math.min(...times)), formatTime(Math.max(...times))]
      : [`position ${Math.min(...positions)}`, `position ${Math.max(...positions)}`];
  replaceChildren(
    body,
    ...rows,
    payload.events.length
      ? h(
          'div',
          { class: 'allframe-timeline-axis' },
          h('div', { class: 'allframe-timeline-label' }),
          h('div', { class: 'allframe-timeline-axis-ticks' }, h('span', {}, axis[0]), h('span', {}, axis[1]))
        )
      : h('p', { class: 'allframe-muted' }, 'No events.')
  );
}

/** Render a timeline payload into `host` (replacing its content). */
export function renderTimeline(host: HTMLElement, payload: unknown): void {
  const checked = check(payload, timelineV1);
  if (!checked.ok) {
    replaceChildren(
      host,
      checked.unsupported
        ? errorBox('allframe timeline: unsupported output', checked.unsupported)
        : errorBox(
            'allframe timeline: invalid output',
            'The payload does not match timeline.v1.json:',
            checked.problems
          )
    );
    return;
  }
  const timeline = payload as ITimelinePayload;
  const body = h('div', { class: 'allframe-timeline-body' });
  const selected = h('div', { class: 'allframe-timeline-selected' }, 'Click an event to see its payload.');
  const payloadPane = h('pre', { class: 'allframe-timeline-payload' });
  const metadataPane = h('pre', { class: 'allframe-timeline-metadata' });
  const metadata = h('details', { class: 'allframe-timeline-metadata-box' }, h('summary', {}, 'metadata'), metadataPane);
  metadata.hidden = true;
  let current: HTMLElement | null = null;

  const select = (event: ITimelineEvent, marker: HTMLElement): void => {
    current?.classList.remove('allframe-selected');
    marker.classList.add('allframe-selected');
    current = marker;
    replaceChildren(
      selected,
      h('strong', {}, event.type),
      ` · stream ${event.lane}` +
        (event.version !== undefined ? ` · version ${event.version}` : '') +
        ` · position ${event.position} · ${event.time}`
    );
    payloadPane.textContent = prettyJSON(event.data ?? {});
    metadataPane.textContent = prettyJSON(event.metadata ?? {});
    metadata.hidden = !event.metadata || Object.keys(event.metadata).length === 0;
  };

  const types = Array.from(new Set(timeline.events.map(e => e.type))).sort();
  const scaleButtons = (['time', 'position'] as Scale[]).map(scale => {
    const button = h('button', { class: 'allframe-timeline-scale', type: 'button', 'data-scale': scale }, `by ${scale}`);
    button.addEventListener('click', () => {
      scaleButtons.forEach(b => b.classList.toggle('allframe-active', b === button));
      current = null;
      drawLanes(body, timeline, scale, select);
    });
    return button;
  });
  scaleButtons[0].classList.add('allframe-active');
  const laneCount = buildLanes(timeline).length;
  const container = h(
    'div',
    { class: 'allframe-timeline' },
    h(
      'div',
      { class: 'allframe-toolbar' },
      h('span', { class: 'allframe-caption' }, timeline.title ?? 'Event timeline'),
      h('span', { class: 'allframe-muted' }, `${timeline.events.length} events · ${laneCount} streams`),
      h('span', { class: 'allframe-spacer' }),
      ...scaleButtons
    ),
    h(
      'div',
      { class: 'allframe-legend' },
      ...types.map(type => {
        const swatch = h('span', { class: 'allframe-swatch' });
        swatch.style.background = colourFor(type);
        return h('span', { class: 'allframe-legend-item' }, swatch, type);
      })
    ),
    body,
    h('div', { class: 'allframe-timeline-details' }, selected, payloadPane, metadata)
  );
  drawLanes(body, timeline, 'time', select);
  replaceChildren(host, container);
}

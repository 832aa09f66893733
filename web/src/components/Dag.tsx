/**
 * A workflow's DAG, laid out automatically (dagre, left to right) and drawn with React Flow. Each
 * node is a step colored by its state; the layout is computed only when the graph's shape changes,
 * so a state change (live updates) repaints the node without moving anything. An edge follows the
 * route dagre gives it: one that skips columns keeps to a lane of its own across them, instead of
 * being drawn through the nodes in between (where it would look like it came from one of them).
 *
 * @example
 *   <Dag nodes={[{ id: 'a', label: 'a', status: 'completed' }, { id: 'b', label: 'b' }]} edges={[{ from: 'a', to: 'b' }]} onSelect={setStep} />
 */
import dagre from '@dagrejs/dagre';
import { Background, BaseEdge, Controls, MiniMap, ReactFlow, type Edge, type EdgeProps, type Node, type NodeProps, Handle, Position, useStore } from '@xyflow/react';
import '@xyflow/react/dist/style.css';
import { createContext, memo, useContext, useEffect, useMemo, useRef, useState, useSyncExternalStore, type KeyboardEvent } from 'react';
import { Link } from 'react-router';

export interface DagNode {
  id: string;
  label: string;
  /** A second line: what the step runs (`echo@1.0.0`, `sleep 5s`, `wait event order.paid`, `workflow echo-chain`…) */
  sublabel?: string;
  status?: string;
  /** A short note drawn under the label (e.g. `7/10` for a map's elements). */
  note?: string;
  /** A thin bar of states at the bottom (a map step's elements): how many are in each. */
  bar?: ReadonlyArray<{ status: string; count: number }>;
  /** A link drawn in the node (a sub-workflow step's child run). */
  link?: { to: string; label: string };
}

export interface DagEdge {
  from: string;
  to: string;
}

const WIDTH = 180;
const HEIGHT = 54;

interface StepData extends Record<string, unknown> {
  node: DagNode;
}

/**
 * The selected node's id, outside the nodes' data: a new selection re-renders only the two nodes
 * whose "am I selected" answer changes, not every node of a 1,000-step graph.
 */
class Selection {
  private value: string | undefined;
  private readonly listeners = new Set<() => void>();
  get = (): string | undefined => this.value;
  set(value: string | undefined): void {
    if (value === this.value) return;
    this.value = value;
    for (const l of this.listeners) l();
  }
  subscribe = (l: () => void): (() => void) => {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  };
}

const SelectionContext = createContext<Selection | undefined>(undefined);

const StepNode = memo(function StepNode({ data }: NodeProps<Node<StepData>>) {
  const { node } = data;
  const store = useContext(SelectionContext);
  const selected = useSyncExternalStore(store?.subscribe ?? noSubscribe, () => store?.get() === node.id);
  const status = node.status ?? 'pending';
  return (
    <div className={`dag-node s-${status}${selected ? ' selected' : ''}`} data-step={node.id} data-status={status} title={`${node.id}: ${status}`}>
      <Handle type="target" position={Position.Left} isConnectable={false} />
      <div className="dag-label">{node.label}</div>
      <div className="dag-sub">
        {node.sublabel}
        {node.note ? <span className="dag-note"> · {node.note}</span> : null}
        {node.link ? (
          <>
            {' · '}
            <Link to={node.link.to} className="dag-link" onClick={(e) => e.stopPropagation()}>
              {node.link.label}
            </Link>
          </>
        ) : null}
      </div>
      {node.bar ? (
        <div className="dag-bar" aria-hidden="true">
          {node.bar.map((b) => (
            <span key={b.status} className={`s-${b.status}`} style={{ flexGrow: b.count }} />
          ))}
        </div>
      ) : null}
      <Handle type="source" position={Position.Right} isConnectable={false} />
    </div>
  );
});

const noSubscribe = (): (() => void) => () => undefined;

const nodeTypes = { step: StepNode };

interface Point {
  x: number;
  y: number;
}

/** A routed edge's data: the points dagre placed it through, and the x of each column of nodes. */
interface RouteData extends Record<string, unknown> {
  points: readonly Point[];
  columns: readonly number[];
}

/**
 * The SVG path of an edge from the source's handle to the target's through dagre's points. Where a
 * point lies on a column of nodes (a long edge crossing it), the path runs straight across the
 * column's whole width, in the free lane dagre kept for it; it bends only in the gaps between
 * columns, where no node is.
 *
 * @example
 *   routedPath({ x: 190, y: 27 }, { x: 730, y: 90 }, [{ x: 220, y: 40 }, { x: 340, y: 140 }, …], [100, 340, 580])
 */
export function routedPath(from: Point, to: Point, points: readonly Point[], columns: readonly number[]): string {
  const through: Point[] = [from];
  for (const p of points) {
    if (columns.some((c) => Math.abs(c - p.x) < 1)) through.push({ x: p.x - WIDTH / 2, y: p.y }, { x: p.x + WIDTH / 2, y: p.y });
    else through.push(p);
  }
  through.push(to);
  let d = `M ${from.x},${from.y}`;
  for (let i = 1; i < through.length; i++) {
    const a = through[i - 1]!;
    const b = through[i]!;
    const mid = (a.x + b.x) / 2;
    // A curve with level ends (as React Flow's own edges leave and reach a node's side).
    d += a.y === b.y ? ` L ${b.x},${b.y}` : ` C ${mid},${a.y} ${mid},${b.y} ${b.x},${b.y}`;
  }
  return d;
}

function RoutedEdge({ sourceX, sourceY, targetX, targetY, data, style }: EdgeProps<Edge<RouteData>>) {
  // dagre's first and last points are on the nodes' borders; the handles are where the edge starts and ends.
  const inner = data ? data.points.slice(1, -1) : [];
  return <BaseEdge path={routedPath({ x: sourceX, y: sourceY }, { x: targetX, y: targetY }, inner, data?.columns ?? [])} {...(style ? { style } : {})} />;
}

const edgeTypes = { routed: RoutedEdge };

/** A minimap node in its step's state color (CSS variables, so the dark theme applies). */
const minimapColor = (n: Node): string => `var(--s-${(n.data as StepData).node.status ?? 'pending'})`;

/** The part of the graph in view, in the graph's coordinates. */
interface View {
  left: number;
  top: number;
  right: number;
  bottom: number;
}

/**
 * Reports the part of the graph in view, once the view has stayed still for a moment (a fit, a pan,
 * a zoom). Rendered inside React Flow for its store.
 */
function ViewWatch({ onChange }: { onChange: (view: View) => void }) {
  const [x, y, zoom] = useStore((s) => s.transform);
  const width = useStore((s) => s.width);
  const height = useStore((s) => s.height);
  useEffect(() => {
    const t = setTimeout(() => {
      // Half a view of margin on every side: a small pan still shows its edges.
      const w = width / zoom;
      const h = height / zoom;
      onChange({ left: -x / zoom - w / 2, top: -y / zoom - h / 2, right: -x / zoom + 1.5 * w, bottom: -y / zoom + 1.5 * h });
    }, 60);
    return () => clearTimeout(t);
  }, [x, y, zoom, width, height, onChange]);
  return null;
}

/** Above this many nodes, only the edges between nodes in view are drawn (a fan-out of 1,000 has 2,000 edges, each an SVG path React Flow tracks). */
const EDGES_IN_VIEW_ABOVE = 300;

/** Above this many nodes, the layered layout below replaces dagre (whose ordering phase grows fast with a rank's width). */
const DAGRE_MAX_NODES = 300;

/**
 * A layered layout in linear time for big graphs: a node's column is the longest path to it from a
 * root, nodes stacked in each column in the order given, each column centered.
 */
function layeredLayout(nodes: readonly DagNode[], edges: readonly DagEdge[]): Map<string, { x: number; y: number }> {
  const preds = new Map<string, string[]>();
  for (const e of edges) {
    const list = preds.get(e.to);
    if (list) list.push(e.from);
    else preds.set(e.to, [e.from]);
  }
  const rank = new Map<string, number>();
  const rankOf = (id: string, seen: Set<string>): number => {
    const known = rank.get(id);
    if (known !== undefined) return known;
    if (seen.has(id)) return 0; // a cycle cannot happen in a workflow; stay safe
    seen.add(id);
    // A loop, not Math.max(...): a spread of thousands of arguments can throw a RangeError.
    let r = 0;
    for (const p of preds.get(id) ?? []) r = Math.max(r, rankOf(p, seen) + 1);
    rank.set(id, r);
    return r;
  };
  const columns: string[][] = [];
  for (const n of nodes) (columns[rankOf(n.id, new Set())] ??= []).push(n.id);
  const at = new Map<string, { x: number; y: number }>();
  columns.forEach((ids, c) => {
    const top = -(ids.length * (HEIGHT + 18)) / 2;
    ids.forEach((id, i) => at.set(id, { x: 10 + c * (WIDTH + 60), y: top + i * (HEIGHT + 18) }));
  });
  return at;
}

/** Where the nodes go, and (from dagre) the route of each edge, by `from>to`, and the x of each column's center. */
interface Layout {
  at: Map<string, Point>;
  routes: Map<string, Point[]>;
  columns: number[];
}

/** Positions from dagre (or the layered layout for a big graph), keyed by the graph's shape (ids and edges), not by states. */
function layout(nodes: readonly DagNode[], edges: readonly DagEdge[]): Layout {
  if (nodes.length > DAGRE_MAX_NODES) return { at: layeredLayout(nodes, edges), routes: new Map(), columns: [] };
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: 'LR', nodesep: 18, ranksep: 60, marginx: 10, marginy: 10 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const n of nodes) g.setNode(n.id, { width: WIDTH, height: HEIGHT });
  for (const e of edges) if (g.hasNode(e.from) && g.hasNode(e.to)) g.setEdge(e.from, e.to);
  dagre.layout(g);
  const at = new Map<string, Point>();
  const columns = new Set<number>();
  for (const n of nodes) {
    const p = g.node(n.id) as Point | undefined;
    at.set(n.id, { x: (p?.x ?? 0) - WIDTH / 2, y: (p?.y ?? 0) - HEIGHT / 2 });
    if (p) columns.add(p.x);
  }
  const routes = new Map<string, Point[]>();
  for (const e of edges) {
    const points = g.hasEdge(e.from, e.to) ? (g.edge(e.from, e.to) as { points?: Point[] } | undefined)?.points : undefined;
    if (points) routes.set(`${e.from}>${e.to}`, points);
  }
  return { at, routes, columns: [...columns] };
}

export function Dag({ nodes, edges, selected, onSelect, height = 360 }: { nodes: readonly DagNode[]; edges: readonly DagEdge[]; selected?: string | undefined; onSelect?: (id: string) => void; height?: number }) {
  const shape = `${nodes.map((n) => n.id).join('\u0000')}\u0001${edges.map((e) => `${e.from}>${e.to}`).join('\u0000')}`;
  // The layout depends on the shape only: a state change repaints without moving anything.
  const laidOut = useMemo(() => layout(nodes, edges), [shape]);
  const positions = laidOut.at;
  // React Flow redoes its work only for node objects that changed: keep each one while its step and
  // its place stay the same (a big run's live update then touches a few nodes). The selection is
  // not in the nodes (see Selection).
  const cache = useRef(new Map<string, Node<StepData>>());
  const flowNodes: Node<StepData>[] = useMemo(() => {
    const next = new Map<string, Node<StepData>>();
    const out = nodes.map((n) => {
      const position = positions.get(n.id) ?? { x: 0, y: 0 };
      const old = cache.current.get(n.id);
      const flow = old && old.data.node === n && old.position === position ? old : { id: n.id, type: 'step', position, data: { node: n }, draggable: false, connectable: false, width: WIDTH, height: HEIGHT };
      next.set(n.id, flow);
      return flow;
    });
    cache.current = next;
    return out;
  }, [nodes, positions]);
  const [selection] = useState(() => {
    const first = new Selection();
    first.set(selected);
    return first;
  });
  useEffect(() => selection.set(selected), [selection, selected]);
  // The latest onSelect, read by stable handlers: a new function each render would re-render React Flow.
  const onSelectRef = useRef(onSelect);
  onSelectRef.current = onSelect;
  const onNodeClick = useMemo(() => (_: unknown, n: Node) => onSelectRef.current?.(n.id), []);
  // Keyboard: React Flow's nodes are focusable (Tab); Enter or Space on one opens its step, as a click does.
  const onKeyDown = useMemo(
    () => (e: KeyboardEvent<HTMLDivElement>) => {
      if (e.key !== 'Enter' && e.key !== ' ') return;
      const target = e.target as HTMLElement;
      if (!target.classList.contains('react-flow__node')) return;
      const id = target.getAttribute('data-id');
      if (id === null) return;
      e.preventDefault();
      onSelectRef.current?.(id);
    },
    [],
  );
  // Straight edges for a big graph: a thousand routed paths cost more than they show.
  const big200 = nodes.length > 200;
  const allEdges: Edge[] = useMemo(
    () =>
      edges.map((e) => {
        const id = `${e.from}>${e.to}`;
        const points = big200 ? undefined : laidOut.routes.get(id);
        return points ? { id, source: e.from, target: e.to, type: 'routed', data: { points, columns: laidOut.columns } } : { id, source: e.from, target: e.to, type: big200 ? 'straight' : 'smoothstep' };
      }),
    [edges, big200, laidOut],
  );
  const big = nodes.length > EDGES_IN_VIEW_ABOVE;
  const [view, setView] = useState<View | undefined>(undefined);
  const flowEdges: Edge[] = useMemo(() => {
    if (!big) return allEdges;
    if (!view) return [];
    const inView = (id: string): boolean => {
      const p = positions.get(id);
      return p !== undefined && p.x + WIDTH >= view.left && p.x <= view.right && p.y + HEIGHT >= view.top && p.y <= view.bottom;
    };
    return allEdges.filter((e) => inView(e.source) && inView(e.target));
  }, [big, allEdges, view, positions]);
  return (
    <div className="dag" style={{ height }} data-testid="dag" onKeyDown={onKeyDown}>
      <SelectionContext.Provider value={selection}>
      <ReactFlow
        nodes={flowNodes}
        edges={flowEdges}
        nodeTypes={nodeTypes}
        edgeTypes={edgeTypes}
        fitView
        // A small DAG stays at its natural size instead of filling the view with huge nodes.
        fitViewOptions={{ maxZoom: 1, padding: 0.15 }}
        minZoom={0.05}
        onlyRenderVisibleElements={nodes.length > 200}
        nodesDraggable={false}
        nodesConnectable={false}
        proOptions={{ hideAttribution: true }}
        onNodeClick={onNodeClick}
      >
        {big ? <ViewWatch onChange={setView} /> : null}
        <Background gap={16} size={1} />
        <Controls showInteractive={false} />
        {nodes.length > 30 ? <MiniMap pannable zoomable nodeColor={minimapColor} nodeStrokeWidth={0} /> : null}
      </ReactFlow>
      </SelectionContext.Provider>
    </div>
  );
}

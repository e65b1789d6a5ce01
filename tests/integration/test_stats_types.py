"""Stored statistics types over the wire: binary COPY (send/receive) and text round trips."""
import psycopg


def test_binary_copy_round_trip(db):
    with psycopg.connect(db) as c:
        c.execute(
            """CREATE TABLE src AS
               SELECT g % 4 AS k, kpi.sketch_agg(g * 1.5) AS s, kpi.trend_agg(g::float8, 2.0 * g) AS t
               FROM generate_series(1, 5000) g GROUP BY g % 4"""
        )
        c.execute("CREATE TABLE dst (LIKE src)")
        with c.cursor().copy("COPY src TO STDOUT (FORMAT BINARY)") as cp:
            data = b"".join(bytes(chunk) for chunk in cp)
        with c.cursor().copy("COPY dst FROM STDIN (FORMAT BINARY)") as cp:
            cp.write(data)
        same = c.execute(
            """SELECT bool_and(a.s::text = b.s::text AND a.t::text = b.t::text), count(*)
               FROM src a JOIN dst b USING (k)"""
        ).fetchone()
        assert same == (True, 4)
        p = c.execute("SELECT kpi.approx_percentile(kpi.sketch_agg(s), 1) FROM dst").fetchone()[0]
        assert p == 7500.0
        slope = c.execute("SELECT kpi.slope(kpi.trend_agg(t)) FROM dst").fetchone()[0]
        assert abs(slope - 2.0) < 1e-12


def test_corrupt_binary_input_is_rejected(db):
    with psycopg.connect(db) as c:
        c.execute("CREATE TABLE dst (s kpi.sketch)")
        good = c.execute("SELECT kpi_internal.sketch_send(kpi.sketch_agg(v)) FROM (VALUES (1.0::float8), (2.0)) x(v)").fetchone()[0]
        # a binary COPY stream with one field holding a truncated sketch
        header = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
        bad = bytes(good)[:-3]
        row = b"\x00\x01" + len(bad).to_bytes(4, "big") + bad
        try:
            with c.cursor().copy("COPY dst FROM STDIN (FORMAT BINARY)") as cp:
                cp.write(header + row + b"\xff\xff")
            raise AssertionError("corrupt sketch accepted")
        except psycopg.errors.InvalidBinaryRepresentation as e:
            assert "kpi.sketch" in str(e)

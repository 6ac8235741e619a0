-- Metrics count operations across every tenant: the portal's role sees one tenant at a time,
-- so this counts for it, and returns nothing but numbers.
CREATE FUNCTION portico_operation_counts()
RETURNS TABLE (kind TEXT, state TEXT, operations BIGINT, oldest BIGINT)
LANGUAGE sql STABLE SECURITY DEFINER AS $$
    SELECT o.kind, o.state, count(*), min(o.created_at)
    FROM operation o GROUP BY o.kind, o.state
$$;
DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION portico_operation_counts() SET search_path = %I, pg_temp',
                   current_schema());
END
$$;
REVOKE ALL ON FUNCTION portico_operation_counts() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION portico_operation_counts() TO portico_app;

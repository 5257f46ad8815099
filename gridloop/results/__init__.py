"""What a run leaves behind: recorded series, KPIs from ground truth, the report and the plots."""
